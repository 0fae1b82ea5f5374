package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// loop is the work queue and worker pool shared by the controllers: keys
// go in, sync is called for each with at most one worker per key, and a
// failed sync requeues the key with exponential backoff.
type loop struct {
	name  string
	queue workqueue.TypedRateLimitingInterface[string]
	sync  func(ctx context.Context, key string) error
	lg    *slog.Logger
	// synced tells when the handlers added by watch have seen their
	// informers' first lists; store is the cache of the kind the loop
	// keeps (own). Both are set before run.
	synced []cache.InformerSynced
	store  cache.Store
}

func newLoop(name string, lg *slog.Logger, sync func(ctx context.Context, key string) error) *loop {
	rl := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, 2*time.Minute),
	)
	return &loop{
		name:  name,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
		sync:  sync,
		lg:    lg,
	}
}

// conflictRetry is when a key whose sync met a write conflict is synced
// again.
const conflictRetry = 20 * time.Millisecond

// add enqueues key.
func (l *loop) add(key string) { l.queue.Add(key) }

// addAfter enqueues key once d has passed.
func (l *loop) addAfter(key string, d time.Duration) { l.queue.AddAfter(key, d) }

// run waits for the handlers added by watch and for synced, then runs
// workers until ctx ends, and returns after every worker has stopped. It
// returns nil when ctx ends.
func (l *loop) run(ctx context.Context, workers int, synced ...cache.InformerSynced) error {
	defer l.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), append(slices.Clone(l.synced), synced...)...) {
		return nil
	}
	l.lg.Info("controller started", "workers", workers)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for l.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	l.queue.ShutDown()
	wg.Wait()
	l.lg.Info("controller stopped")
	return nil
}

func (l *loop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	err := l.sync(ctx, key)
	switch {
	case err == nil:
		l.queue.Forget(key)
	case ctx.Err() != nil:
	case apierrors.IsConflict(err):
		// A write based on a cached object that changed meanwhile: the
		// informer brings the change within moments, so the key comes
		// back soon, and conflicts do not grow its backoff (under churn,
		// one object may conflict many times in a row).
		l.lg.Debug("sync conflicted", "key", key, "err", err)
		l.queue.Forget(key)
		l.queue.AddAfter(key, conflictRetry)
	default:
		l.lg.Debug("sync failed", "key", key, "err", err)
		l.queue.AddRateLimited(key)
	}
	return true
}

// keyOf returns the namespace/name key of an informer object, including
// a tombstone's.
func keyOf(obj any) (string, bool) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	return key, err == nil
}

// untombstone returns the object inside a tombstone, or obj itself.
func untombstone(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// handler is an informer and what a controller does with its events.
type handler struct {
	inf cache.SharedIndexInformer
	h   cache.ResourceEventHandler
}

// addHandlers adds each handler to its informer and returns what tells
// when they have all seen their informer's first list.
func addHandlers(hs ...handler) ([]cache.InformerSynced, error) {
	synced := make([]cache.InformerSynced, 0, len(hs))
	for _, h := range hs {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return nil, err
		}
		synced = append(synced, reg.HasSynced)
	}
	return synced, nil
}

// workload is what the workload controllers (replication controllers
// and ReplicaSets, Deployments, StatefulSets, DaemonSets, Jobs and
// CronJobs) are built on: the client they write through, their event
// recorder, their logger and their loop.
type workload struct {
	client kubernetes.Interface
	rec    EventRecorder
	lg     *slog.Logger
	loop   *loop
}

// newWorkload returns the parts of the controller called name (its
// queue's name; it logs as component "<name>-controller") that syncs keys
// with sync. rec and lg may be nil.
func newWorkload(client kubernetes.Interface, name string, rec EventRecorder, lg *slog.Logger, sync func(ctx context.Context, key string) error) workload {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", name+"-controller")
	return workload{client: client, rec: recorderOr(rec), lg: lg, loop: newLoop(name, lg, sync)}
}

// Run syncs the controller's objects with workers goroutines until ctx
// ends, and returns after they have stopped.
func (w *workload) Run(ctx context.Context, workers int) error {
	return w.loop.run(ctx, workers)
}

// watch adds each handler to its informer; run waits until they have all
// seen their informer's first list. Call it before run.
func (l *loop) watch(hs ...handler) error {
	synced, err := addHandlers(hs...)
	l.synced = append(l.synced, synced...)
	return err
}

// own is the handler of the kind the loop keeps: every event enqueues its
// object's key, and cached reads inf's cache.
func (l *loop) own(inf cache.SharedIndexInformer) handler {
	l.store = inf.GetStore()
	return handler{inf, cache.ResourceEventHandlerFuncs{
		AddFunc:    l.enqueue,
		UpdateFunc: func(_, obj any) { l.enqueue(obj) },
		DeleteFunc: l.enqueue,
	}}
}

// each is the handler that calls f with the object of every event of inf,
// and with the old and then the new object of an update.
func each(inf cache.SharedIndexInformer, f func(obj any)) handler {
	return handler{inf, cache.ResourceEventHandlerFuncs{
		AddFunc:    f,
		UpdateFunc: func(old, obj any) { f(old); f(obj) },
		DeleteFunc: f,
	}}
}

// enqueue enqueues the key of an informer object or tombstone.
func (l *loop) enqueue(obj any) {
	if key, ok := keyOf(obj); ok {
		l.add(key)
	}
}

// cached returns the object key names from the cache of the loop's own
// kind (see own); the caller must not change it. found is false when the
// key is malformed or the object is gone: the key is done, and each
// forget is called with it to drop what the controller keeps about it.
func cached[T any](l *loop, key string, forget ...func(key string)) (obj T, found bool, err error) {
	item, exists, err := l.store.GetByKey(key)
	if err != nil {
		return obj, false, err
	}
	if !exists {
		for _, f := range forget {
			f(key)
		}
		return obj, false, nil
	}
	obj, ok := item.(T)
	if !ok {
		return obj, false, fmt.Errorf("%s cache holds a %T under %q", l.name, item, key)
	}
	return obj, true, nil
}

// controllerKeyOf returns the key of obj's controller when it is of kind
// gvk, whether or not that controller still exists.
func controllerKeyOf(obj metav1.Object, gvk schema.GroupVersionKind) (string, bool) {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return "", false
	}
	return obj.GetNamespace() + "/" + ref.Name, true
}

// addSelecting enqueues each of owners whose label selector (neither
// empty nor invalid) selects set: the owners that may adopt an orphan so
// labelled.
func addSelecting[T metav1.Object](l *loop, owners []T, selector func(T) *metav1.LabelSelector, set map[string]string) {
	for _, o := range owners {
		sel, err := metav1.LabelSelectorAsSelector(selector(o))
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(set)) {
			l.add(o.GetNamespace() + "/" + o.GetName())
		}
	}
}
