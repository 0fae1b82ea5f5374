package api

// NodeProtocol is the ALPN protocol an agent offers, ahead of "h2", on a
// TLS connection to a server's HTTPS port that carries only the node
// protocol's gRPC. A server that knows it serves the connection with
// gRPC's own HTTP/2 transport; one that does not negotiates "h2" and tells
// the gRPC requests apart from API requests by their Content-Type, so
// agents and servers of either kind work together.
const NodeProtocol = "minik-node/1"

// StreamWindow and ConnWindow are the HTTP/2 flow-control windows, per
// stream and per connection, that both ends of a node connection use, and
// keep: gRPC's adaptive windows measure the link by pinging the peer
// whenever data arrives after a quiet spell, which on a node's sparse
// messages adds a ping and its acknowledgement to nearly every message.
// A fixed 1 MiB lets a complete set of a large cluster through in a few
// round trips.
const (
	StreamWindow = 1 << 20
	ConnWindow   = 4 << 20
)
