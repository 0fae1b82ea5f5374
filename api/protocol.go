package api

// NodeProtocol is the ALPN protocol an agent offers, ahead of "h2", on a
// TLS connection to a server's HTTPS port that carries only the node
// protocol's gRPC. A server that knows it serves the connection with
// gRPC's own HTTP/2 transport; one that does not negotiates "h2" and tells
// the gRPC requests apart from API requests by their Content-Type, so
// agents and servers of either kind work together.
const NodeProtocol = "minik-node/1"
