// Package hollow runs many simulated nodes in one process, for scale tests
// of the control plane.
//
// A hollow node is a real member of the cluster as far as the server can
// tell: it joins with the join token through the node protocol
// (api/node.proto), gets a certificate and a podCIDR, reports its Node,
// heartbeats, and keeps a session open. It runs no containers: a pod bound
// to it is reported Running and Ready at once, with a podIP from the node's
// podCIDR, and a pod marked for deletion is reported terminated, so the
// server removes it.
//
// # Data directory
//
//	DataDir/ca.crt          the server's CA, checked against the token's pin
//	DataDir/node-password   the password every node registers its name with
//
// Nodes register again on every start (registration with the same
// password is idempotent and keeps a node's podCIDR), so nothing else is
// kept.
//
// # Sizing
//
// Each node holds one TLS connection and three goroutines. The cluster
// CIDR must have a /24 per node: the default 10.42.0.0/16 holds 256 nodes,
// so a thousand need a /14 or wider (--cluster-cidr 10.64.0.0/10).
package hollow
