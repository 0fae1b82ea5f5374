// Package nodes serves the node protocol (api/node.proto) to agents: it
// registers nodes, streams each node its desired state and applies what
// agents report.
//
// # Identity
//
// Register is the only call authenticated by the join token; it signs a
// client certificate with common name "system:node:NAME" in group
// "system:nodes". The first registration binds NAME to the node's password
// (a salted hash under /registry/minik/nodepasswords/); later ones need
// that password or the node's certificate, until the Node is deleted
// (binding.go). Registrations are rate-limited per token (ratelimit.go). Every other call is made with that certificate and acts
// for the node it names. Writes go through the API server in process with
// the node's identity, so the API's node authorization applies: a node
// writes only its own Node and the status of pods bound to it. Deleting a
// terminated pod, which nodes may not do through the API, is checked here
// and done as ServiceUser. Pod statuses, the most frequent write, are made
// by a direct call (API.UpdatePodStatus), which applies the same rules
// without a client request; other writes use a client. Agents send their
// status batches on one Report stream per connection (UpdateStatus, one
// call per batch, serves older agents), each answered in order.
//
// PodToken (podtoken.go) signs the service account tokens of the pods'
// serviceAccountToken volumes with the server's Issuer, as the kubelet
// gets them with a TokenRequest: only for a pod bound to the calling node,
// with the uid it has, and as the pod's own service account; anything
// else is PERMISSION_DENIED, a missing pod included. The token is bound to
// the pod and the node. A token of 3607 s for the API's audience (the one
// admission's kube-api-access volume asks for) lasts a year and carries
// the warnafter claim at 3607 s, which is the expiry the node is told.
//
// CreatePodCertificate (podcertificate.go) makes the PodCertificateRequest
// of a pod's podCertificate projection, as the kubelet would, but written
// by ServiceUser once the service checked that the pod is bound to the
// calling node, has the uid given and projects, at the volume and source
// index named, that signer and key type; the node sends only the stub
// PKCS#10 request signed with its new key, and the names and UIDs of the
// pod, service account and node, maxExpirationSeconds (default 86400) and
// the user annotations come from the stored objects. It and
// WaitPodCertificate watch the request for up to 30 s and return its
// outcome (pending, issued with the chain and its times, denied or
// failed); a node that sees it pending calls WaitPodCertificate again.
// A request of another node's pod is NOT_FOUND, as a missing one.
//
// # Sessions
//
// One store watch on /registry/ (the hub, hub.go) feeds every session: it
// decodes each pod's spec.nodeName once and hands the event only to the
// sessions of the nodes the pod was and is bound to, and services,
// endpoints and Nodes to all. A session starts with a complete set listed
// at the revision the hub has dispatched up to, so nothing is lost
// between the two; changes follow in batches chained by revision. The hub
// keeps recent events, so an agent resuming from a recent revision gets
// what it missed; one resuming from an older or compacted revision gets a
// complete set. The hub never waits for a session: one that lets its
// queue fill up is dropped and starts over with a complete set.
//
// ConfigMaps and Secrets go to a node only while one of its pods
// references them (session_refs.go, internal/podrefs): a session reads a
// pod's references once, when the pod comes to the node, puts the current
// state of each object that becomes referenced, passes on later changes
// of those objects only, and deletes them with the last pod naming them.
// A resuming session rebuilds the references as of the agent's revision.
//
// # Heartbeats and podCIDRs
//
// Heartbeats live in memory; the Node's Ready condition is written only
// when readiness changes, and a node silent for the grace period is marked
// Ready=Unknown. The leader renews each live node's Lease in
// kube-node-lease from those heartbeats, one write per node every
// NodeLeaseRenewInterval (lease.go). Each node gets a /24 of the cluster CIDR, recorded under
// /registry/ranges/podcidrs/ so that it survives restarts, and released
// when the Node object is deleted, or when no Node appeared within the
// registration grace period (sweep.go).
package nodes
