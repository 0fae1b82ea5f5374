package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// ownerIndex indexes objects by the uids of their owners.
const ownerIndex = "gc-owner-uid"

// gcRecheck is how soon an owner waiting for its dependents to go is
// checked again even without an event.
const gcRecheck = 2 * time.Second

// gcKind is a kind the garbage collector follows, as owner and as
// dependent.
type gcKind struct {
	group      string // "" for core/v1 and for kinds followed as dependents only
	kind       string // "Pod"
	resource   string // "pods"
	namespaced bool
	// rest serves the resource; nil for core/v1 and custom kinds.
	rest     func(kubernetes.Interface) rest.Interface
	informer cache.SharedIndexInformer

	// For a custom kind (gc_custom.go): the storage version, the
	// metadata client of the resource and what stops its informer.
	version string
	meta    metadata.Getter
	stop    context.CancelFunc
}

// GarbageCollectorOptions tunes a GarbageCollector.
type GarbageCollectorOptions struct {
	// Loopback, if set, is the client configuration the collector follows
	// the kinds of CustomResourceDefinitions and the built-in kinds
	// without a typed informer with; nil: it does not.
	Loopback *rest.Config
}

// GarbageCollector deletes objects whose owners are gone, and carries out
// the foreground and orphan deletion the API server asks for with the
// foregroundDeletion and orphan finalizers:
//
//   - An object all of whose ownerReferences name objects that no longer
//     exist (by uid) is deleted in the background; references to missing
//     owners are removed from objects that keep another owner.
//   - An owner being deleted with the foregroundDeletion finalizer has its
//     dependents deleted, blocking ones (blockOwnerDeletion) first; once no
//     blocking dependent remains the finalizer is removed.
//   - An owner being deleted with the orphan finalizer has its reference
//     removed from every dependent; then the finalizer is removed.
//
// It follows the core/v1 kinds Pod, Service, Endpoints,
// ReplicationController, Node, PersistentVolumeClaim and
// PersistentVolume, the apps/v1 kinds ReplicaSet,
// Deployment, DaemonSet and ControllerRevision, the batch/v1 kinds Job and
// CronJob and the kinds of CustomResourceDefinitions (as owners and
// dependents), and EndpointSlices and Leases (as dependents). With a
// Loopback it follows every other stored kind too, by the metadata of its
// objects (gc_builtin.go); without one, references to other kinds are
// left alone.
type GarbageCollector struct {
	client kubernetes.Interface
	lg     *slog.Logger
	loop   *loop
	synced []cache.InformerSynced
	custom *gcCustom // nil: custom kinds are not followed

	kindsMu sync.RWMutex
	kinds   []*gcKind // guarded by kindsMu; custom kinds come and go
}

// NewGarbageCollector returns a GarbageCollector using the informers of
// factory. It must be called before factory is started (it adds an
// index). lg may be nil.
func NewGarbageCollector(client kubernetes.Interface, factory informers.SharedInformerFactory, lg *slog.Logger, opts GarbageCollectorOptions) (*GarbageCollector, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "garbage-collector")
	core := factory.Core().V1()
	gc := &GarbageCollector{
		client: client,
		lg:     lg,
		kinds: []*gcKind{
			{kind: "Pod", resource: "pods", namespaced: true, informer: core.Pods().Informer()},
			{kind: "Service", resource: "services", namespaced: true, informer: core.Services().Informer()},
			{kind: "Endpoints", resource: "endpoints", namespaced: true, informer: core.Endpoints().Informer()},
			{kind: "ReplicationController", resource: "replicationcontrollers", namespaced: true, informer: core.ReplicationControllers().Informer()},
			{kind: "Node", resource: "nodes", informer: core.Nodes().Informer()},
			{kind: "PersistentVolumeClaim", resource: "persistentvolumeclaims", namespaced: true, informer: core.PersistentVolumeClaims().Informer()},
			{kind: "PersistentVolume", resource: "persistentvolumes", informer: core.PersistentVolumes().Informer()},
			// EndpointSlices and Leases are followed as dependents only.
			{kind: "EndpointSlice", resource: "endpointslices", namespaced: true, informer: factory.Discovery().V1().EndpointSlices().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.DiscoveryV1().RESTClient() }},
			{kind: "Lease", resource: "leases", namespaced: true, informer: factory.Coordination().V1().Leases().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.CoordinationV1().RESTClient() }},
			{group: "batch", kind: "Job", resource: "jobs", namespaced: true, informer: factory.Batch().V1().Jobs().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.BatchV1().RESTClient() }},
			{group: "batch", kind: "CronJob", resource: "cronjobs", namespaced: true, informer: factory.Batch().V1().CronJobs().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.BatchV1().RESTClient() }},
			{group: "apps", kind: "ReplicaSet", resource: "replicasets", namespaced: true, informer: factory.Apps().V1().ReplicaSets().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.AppsV1().RESTClient() }},
			{group: "apps", kind: "Deployment", resource: "deployments", namespaced: true, informer: factory.Apps().V1().Deployments().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.AppsV1().RESTClient() }},
			{group: "apps", kind: "DaemonSet", resource: "daemonsets", namespaced: true, informer: factory.Apps().V1().DaemonSets().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.AppsV1().RESTClient() }},
			{group: "apps", kind: "StatefulSet", resource: "statefulsets", namespaced: true, informer: factory.Apps().V1().StatefulSets().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.AppsV1().RESTClient() }},
			{group: "apps", kind: "ControllerRevision", resource: "controllerrevisions", namespaced: true, informer: factory.Apps().V1().ControllerRevisions().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.AppsV1().RESTClient() }},
			{group: rbacv1.GroupName, kind: "Role", resource: "roles", namespaced: true, informer: factory.Rbac().V1().Roles().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.RbacV1().RESTClient() }},
			{group: rbacv1.GroupName, kind: "ClusterRole", resource: "clusterroles", informer: factory.Rbac().V1().ClusterRoles().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.RbacV1().RESTClient() }},
			{group: rbacv1.GroupName, kind: "RoleBinding", resource: "rolebindings", namespaced: true, informer: factory.Rbac().V1().RoleBindings().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.RbacV1().RESTClient() }},
			{group: rbacv1.GroupName, kind: "ClusterRoleBinding", resource: "clusterrolebindings", informer: factory.Rbac().V1().ClusterRoleBindings().Informer(),
				rest: func(c kubernetes.Interface) rest.Interface { return c.RbacV1().RESTClient() }},
		},
	}
	gc.loop = newLoop("garbagecollector", lg, gc.sync)
	for _, k := range gc.kinds {
		if err := gc.watch(k); err != nil {
			return nil, fmt.Errorf("%s informer: %w", k.resource, err)
		}
	}
	if opts.Loopback != nil {
		c, err := newGCCustom(opts.Loopback)
		if err != nil {
			return nil, err
		}
		gc.custom = c
		for _, k := range metadataKinds(gc.kinds) {
			if err := gc.followMetadata(c, k); err != nil {
				return nil, fmt.Errorf("%s informer: %w", k.resource, err)
			}
		}
		if err := gc.watchCRDs(c); err != nil {
			return nil, fmt.Errorf("customresourcedefinitions informer: %w", err)
		}
	}
	return gc, nil
}

// kindList is the kinds followed now. The slice is the caller's.
func (gc *GarbageCollector) kindList() []*gcKind {
	gc.kindsMu.RLock()
	defer gc.kindsMu.RUnlock()
	return slices.Clone(gc.kinds)
}

func (gc *GarbageCollector) watch(k *gcKind) error {
	if err := k.informer.AddIndexers(cache.Indexers{ownerIndex: indexByOwner}); err != nil {
		return err
	}
	reg, err := k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { gc.changed(k, obj) },
		UpdateFunc: func(_, obj any) { gc.changed(k, obj) },
		DeleteFunc: func(obj any) { gc.deleted(k, obj) },
	})
	if err != nil {
		return err
	}
	gc.synced = append(gc.synced, reg.HasSynced)
	return nil
}

func indexByOwner(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	var uids []string
	for _, r := range m.GetOwnerReferences() {
		uids = append(uids, string(r.UID))
	}
	return uids, nil
}

// Run collects garbage with workers goroutines until ctx ends, and
// returns after they have stopped.
func (gc *GarbageCollector) Run(ctx context.Context, workers int) error {
	if gc.custom == nil {
		return gc.loop.run(ctx, workers, gc.synced...)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer gc.custom.wg.Wait()
	defer cancel()
	gc.runCustom(ctx)
	return gc.loop.run(ctx, workers, gc.synced...)
}

// gcKey is the queue key of an object: "resource|namespace/name".
func gcKey(k *gcKind, m metav1.Object) string {
	return k.resource + "|" + cache.NewObjectName(m.GetNamespace(), m.GetName()).String()
}

func (gc *GarbageCollector) changed(k *gcKind, obj any) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	if len(m.GetOwnerReferences()) > 0 || waitsForGC(m) {
		gc.loop.add(gcKey(k, m))
	}
	if m.GetDeletionTimestamp() != nil {
		gc.enqueueOwners(m)
	}
}

// deleted enqueues the dependents of a deleted object (their owner may be
// gone) and its owners (they may wait for it to go).
func (gc *GarbageCollector) deleted(k *gcKind, obj any) {
	m, err := meta.Accessor(untombstone(obj))
	if err != nil {
		return
	}
	gc.enqueueDependents(m)
	gc.enqueueOwners(m)
}

func (gc *GarbageCollector) enqueueDependents(owner metav1.Object) {
	for _, k := range gc.kindList() {
		deps, _ := k.informer.GetIndexer().ByIndex(ownerIndex, string(owner.GetUID()))
		for _, d := range deps {
			if m, err := meta.Accessor(d); err == nil {
				gc.loop.add(gcKey(k, m))
			}
		}
	}
}

func (gc *GarbageCollector) enqueueOwners(m metav1.Object) {
	for _, r := range m.GetOwnerReferences() {
		if k := gc.kindOf(r); k != nil {
			gc.loop.add(k.resource + "|" + cache.NewObjectName(k.namespace(m.GetNamespace()), r.Name).String())
		}
	}
}

// kindOf returns the followed kind a reference names, or nil.
func (gc *GarbageCollector) kindOf(r metav1.OwnerReference) *gcKind {
	for _, k := range gc.kindList() {
		if k.kind != r.Kind {
			continue
		}
		if k.apiVersion() == r.APIVersion {
			return k
		}
		if gv, err := schema.ParseGroupVersion(r.APIVersion); err == nil && k.meta != nil && gv.Group == k.group {
			return k // a kind followed by metadata, referred to in another version
		}
	}
	return nil
}

// apiVersion is k's group/version as references write it: "v1",
// "batch/v1".
func (k *gcKind) apiVersion() string {
	switch {
	case k.group == "":
		return "v1"
	case k.version != "":
		return k.group + "/" + k.version
	}
	return k.group + "/v1"
}

func (k *gcKind) namespace(ns string) string {
	if k.namespaced {
		return ns
	}
	return ""
}

// waitsForGC reports whether m is being deleted and waits for the
// collector (it has the foregroundDeletion or orphan finalizer).
func waitsForGC(m metav1.Object) bool {
	if m.GetDeletionTimestamp() == nil {
		return false
	}
	f := m.GetFinalizers()
	return slices.Contains(f, metav1.FinalizerDeleteDependents) || slices.Contains(f, metav1.FinalizerOrphanDependents)
}

func (gc *GarbageCollector) sync(ctx context.Context, key string) error {
	res, nsName, ok := strings.Cut(key, "|")
	if !ok {
		return nil
	}
	var k *gcKind
	for _, c := range gc.kindList() {
		if c.resource == res {
			k = c
		}
	}
	if k == nil {
		return nil
	}
	obj, exists, err := k.informer.GetIndexer().GetByKey(nsName)
	if err != nil || !exists {
		return err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	fins := m.GetFinalizers()
	switch {
	case m.GetDeletionTimestamp() != nil && slices.Contains(fins, metav1.FinalizerOrphanDependents):
		return gc.orphan(ctx, k, m)
	case m.GetDeletionTimestamp() != nil && slices.Contains(fins, metav1.FinalizerDeleteDependents):
		return gc.deleteDependents(ctx, k, key, m)
	}
	return gc.checkOwners(ctx, k, m)
}

// errUnknownOwner marks a reference whose owner's state can't be told.
var errUnknownOwner = errors.New("gc: owner of a kind not followed")

// rest is the client of k's resource.
func (gc *GarbageCollector) rest(k *gcKind) rest.Interface {
	if k.rest == nil {
		return gc.client.CoreV1().RESTClient()
	}
	return k.rest(gc.client)
}
