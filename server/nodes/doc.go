// Package nodes serves the node protocol (api/node.proto) to agents: it
// registers nodes, streams each node its desired state and applies what
// agents report.
//
// # Identity
//
// Register is the only call authenticated by the join token; it signs a
// client certificate with common name "system:node:NAME" in group
// "system:nodes". Every other call is made with that certificate and acts
// for the node it names. Writes go through the API server in process with
// the node's identity, so the API's node authorization applies: a node
// writes only its own Node and the status of pods bound to it. Deleting a
// terminated pod, which nodes may not do through the API, is checked here
// and done as ServiceUser.
//
// # Sessions
//
// A session is one store watch on /registry/, filtered to the node's pods
// (spec.nodeName) and all services and endpoints. It starts with a complete
// set listed at one revision, with the watch starting at that same
// revision, so nothing is lost between the two. Changes follow in batches
// chained by revision. An agent resuming from a compacted revision gets a
// complete set again.
//
// # Heartbeats and podCIDRs
//
// Heartbeats live in memory; the Node's Ready condition is written only
// when readiness changes, and a node silent for the grace period is marked
// Ready=Unknown. Each node gets a /24 of the cluster CIDR, recorded under
// /registry/ranges/podcidrs/ so that it survives restarts, and released
// when the Node object is deleted.
package nodes
