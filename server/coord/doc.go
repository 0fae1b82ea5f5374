// Package coord coordinates the servers of one cluster.
//
// A server reaches it through [New], which looks at the store: a store
// that several servers can share ([SharedStore], the etcd store) gets an
// [Etcd] coordinator, any other a [Single] one, which always leads and
// shares nothing.
//
// # What is coordinated
//
//   - Leader election ([Coordinator.Lead]): the controllers and the
//     scheduler run on one server at a time. The leader holds an election
//     key on a 6 s lease and stops leading on its own before etcd can let
//     the lease expire (leader.go).
//   - Membership ([Peers]): each server keeps a record on a lease of its
//     own, reads the others' (the server list agents learn) and publishes
//     the heartbeats of the nodes connected to it, so the leader hears of
//     every node and each server knows which server holds a node
//     ([Coordinator.Holder]; members.go).
//   - Pod streams ([PodStreamRouter]): a pod's log, exec and attach are
//     forwarded to the server its node is connected to (streams.go).
//   - Shared secrets ([Secrets], [SecretsOf]): the cluster's CA and keys,
//     sealed with the join token and for the servers that hold the CA, in
//     one record every server reads (secrets.go); a token rotated on one
//     server reaches the others through it (server/tokensync.go).
//
// The keys live under the store's prefix, outside /registry/, so the REST
// API never serves them (keys.go).
package coord
