package controllers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// run waits for synced, then runs workers until ctx ends, and returns
// after every worker has stopped. It returns nil when ctx ends.
func (l *loop) run(ctx context.Context, workers int, synced ...cache.InformerSynced) error {
	defer l.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
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
