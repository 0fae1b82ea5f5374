// Package apiserver serves minik's Kubernetes-shaped REST API: create,
// get, list, update, patch, delete and watch of every kind the registry
// declares (server/registry), their subresources, discovery, OpenAPI and
// tables, over the store (store.Store). Requests are authenticated and
// authorized (server/auth) and admitted (namespace lifecycle, limit
// ranges, quotas, service accounts) before anything is written.
//
// # Request path
//
// ServeHTTP parses the path into a request (request.go), answers
// discovery and OpenAPI (discovery.go, groups.go, openapi.go; every
// served version of a group is listed, the preferred first), and hands
// resource requests to the verbs: create.go, update.go, patch.go,
// delete.go, rest.go (get and list), watch.go; subresources to
// subresources.go (status, scale), podbinding.go, eviction.go and the pod
// streams. Store keys come
// from the registry (Resource.Key and Prefix); allocations that a write
// needs (cluster IPs, NodePorts) are taken before it and given back if
// it fails (alloc.go, nodeports.go).
//
// # Field management and OpenAPI
//
// Every create, update and patch of a client records in
// metadata.managedFields the fields its manager set (fieldmanager.go);
// an apply patch (apply.go) merges a manager's configuration and refuses
// with 409 to take fields another manager set unless forced. Both are
// apimachinery's managedfields over client-go's schemas of the built-in
// kinds, each kind's parsed when it is first written (applyschema.go);
// custom resources merge without a schema. The OpenAPI documents
// (openapi.go, openapischema.go) carry Kubernetes' generated schemas of
// the kinds served, built on first read; kubectl explains, validates and
// computes strategic merge patches from them.
//
// # Read paths
//
// An object is read from the store and then served one of three ways:
//
//   - From the stored bytes (raw.go): when the client asks for the form
//     the object is stored in — protobuf, or JSON for values written by
//     earlier versions — the response is those bytes with the revision
//     put in, without decoding (lists too, protobuf.go).
//   - Decoded once and shared (decoded.go, revcache.go): recent changes
//     are decoded and encoded once for every watcher and for the next
//     update, in three caches bounded in bytes (Config.CacheBytes); a
//     write hands a copy of the object it stored to the decode cache.
//   - Decoded and encoded per request (codec.go, output.go), with
//     tables for kubectl.
//
// Watches (watch.go, watchqueue.go) start from the store's watch, send
// an initial state or the changes after a resourceVersion, bookmarks and
// the initial-events-end bookmark, and cut off a client that reads too
// slowly (Config.WatchBufferBytes).
//
// # Side doors
//
// In-process components do not go through a socket:
//
//   - ServeLoopback and LoopbackConfig (loopback.go) give controllers,
//     the scheduler and the node service a rest.Config whose transport
//     calls ServeHTTP in process (server/internal/inprocess): the
//     same validation, authorization and watch code as remote clients,
//     as the identity the config was made for.
//   - BindPod (podbinding.go) and UpdatePodStatus (podstatus.go) apply a
//     pod binding or a pod status write as a given user without encoding
//     a request: the scheduler's bindings and the nodes' status reports.
//   - PodNode and NodePods (nodepods.go) answer the node authorizer;
//     ObjectUID (tokens.go) answers the service account token checks.
//   - EnsureNamespaces (namespace.go) creates the default namespaces and
//     EnsureAPIServices (apiservices.go) the APIServices of the built-in
//     group-versions at start; Run (loops.go) runs the API's own
//     background loops (quota status, namespace deletion, cache expiry,
//     the APIServices of custom groups and those proxied to Services).
//   - /api and /apis answer aggregated discovery (aggregated.go) to
//     clients that ask for it; apiproxy.go proxies the group-versions of
//     APIServices with a service, presenting the front-proxy client
//     certificate and naming the user in X-Remote-* headers.
//   - Custom resources of a definition with conversion strategy Webhook
//     are converted by its webhook as they are read and written
//     (conversion.go, through registry.Converter).
//   - Config.PodStreams serves pods' log, exec, attach and port-forward
//     (server/streaming, or server/coord's router among several servers);
//     proxy.go proxies to pods and services.
package apiserver
