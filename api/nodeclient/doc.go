// Package nodeclient is the client side of the node protocol
// (api/node.proto), shared by everything that joins a cluster as a node or
// next to one: the agent, hollow nodes and a server joining another.
//
// # Joining
//
// TrustCA fetches the server's CA and checks it against the join token's
// pin (api.ParseToken); Register trades the token and the node's password
// (NodePassword) for a client certificate; Dial opens a connection with the
// options every node connection uses (ConnOptions, TLSConfig), keepalive
// among them, so that a connection whose server went silent is replaced.
//
// # Following a session
//
// A session starts with a complete set and goes on with increments, each
// chained to the one before by revision. OpenSession opens the stream,
// bounded in time like every step before the heartbeats start (nothing
// else would notice a server that stopped answering). Receive hands a
// stream's messages to the node's loop; a Follower checks the chain and
// asks for a complete set again on a gap (ErrGap). Backoff spaces out
// reconnections.
//
// # Reporting
//
// StatusSender sends status batches over one Report stream.
package nodeclient
