// Package controllers holds minik's control loops: replication
// controllers and ReplicaSets (one implementation), Deployments,
// DaemonSets (their template history kept in ControllerRevisions),
// StatefulSets (stable pod names, ordered or parallel, rolled through
// ControllerRevisions, a claim per pod and claim template owned per the
// retention policy), Jobs
// (pods tracked with a finalizer so each is counted once; Indexed Jobs
// with a backoff limit per index) and CronJobs,
// service endpoints and EndpointSlices (built from pods, or mirrored from
// the Endpoints of Services without selector), the garbage collector
// (which follows every stored kind, those of CustomResourceDefinitions
// too, the ones no controller has an informer of by metadata), node
// lifecycle
// (unreachable and not-ready taints, and eviction of pods from nodes with
// NoExecute taints they tolerate for less than forever), pod garbage collection (pods of
// nodes that are gone or out of service, terminated pods past a
// threshold), PersistentVolumeClaims and PersistentVolumes (protection
// finalizers, binding to hand-made volumes, release), pod disruption
// budgets, the rules of
// aggregated ClusterRoles (admin, edit, view), what every
// namespace holds (the default ServiceAccount, the kube-root-ca.crt
// ConfigMap), the kubernetes Service in default, the ServiceCIDR
// kubernetes that publishes the service range, the signer of approved
// kube-apiserver-client CertificateSigningRequests, and the event
// recorder they share with the scheduler and the node service.
//
// # Contract
//
// Every controller reads the cluster through informers built on the API
// server's loopback configuration and writes back through typed client-go
// clients, so it sees the same validation and watch semantics as a remote
// client. Controllers are level-triggered: informer events only enqueue a
// key, and sync(ctx, key) re-reads the current state from the caches. A
// key whose object is gone is done; an error requeues the key with
// exponential backoff. The pod garbage collector, like upstream's, is the
// exception: it looks at every pod each period.
//
// # Running
//
// Each controller is built with New…(client, informers, logger, options)
// and started with Run(ctx, workers), which waits for its caches, runs
// workers until ctx ends and returns after they have stopped. RunAll wires
// all of them on one SharedInformerFactory.
package controllers
