package apiserver

import (
	"context"
	"errors"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// EnsureNamespaces creates the namespaces that always exist.
func (s *Server) EnsureNamespaces(ctx context.Context) error {
	res, _ := registry.Lookup("namespaces")
	for name := range protectedNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		setTypeMeta(ns, res)
		_, _, err := s.createObject(ctx, res, ns, false)
		if err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
	}
	return nil
}

// namespaceDeleted asks Run to empty and remove a namespace.
func (s *Server) namespaceDeleted(name string) {
	select {
	case s.nsQueue <- name:
	default: // the periodic scan picks it up
	}
}

const (
	// nsResyncInterval is how often Run looks for terminating namespaces
	// it was not told of (marked by another server, or before a restart).
	// Within one server, deletes and changes of content trigger it.
	nsResyncInterval = time.Minute
	// nsRetryDelay is the wait before a pass that failed is tried again.
	nsRetryDelay = time.Second
	// cacheExpiryInterval is how often the caches of recent changes let
	// go of those older than cacheAge.
	cacheExpiryInterval = 5 * time.Second
)

// Run runs the server's own control loops until ctx ends: namespace
// deletion (runNamespaces) and quota accounting (runQuotas). It returns
// after both have stopped.
func (s *Server) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.runNamespaces(ctx) })
	g.Go(func() error { return s.runQuotas(ctx) })
	return g.Wait()
}

// runNamespaces empties terminating namespaces and removes them once
// their content is gone, and expires the caches of recent changes. A
// namespace is worked on when it is marked for deletion and
// again whenever an object in it changes (a pod finishing its grace
// period, a finalizer removed), through a watch of the whole registry
// held only while some namespace is terminating. It returns when ctx
// ends.
func (s *Server) runNamespaces(ctx context.Context) error {
	l := &nsLoop{s: s, pending: map[string]bool{}, dirty: map[string]bool{}}
	defer l.stopWatch()
	resync := time.NewTicker(nsResyncInterval)
	defer resync.Stop()
	expire := time.NewTicker(cacheExpiryInterval)
	defer expire.Stop()
	l.scan(ctx)
	for {
		l.work(ctx)
		select {
		case <-ctx.Done():
			return nil
		case name := <-s.nsQueue:
			l.mark(name)
		case ev, ok := <-l.changes:
			l.observe(ev, ok)
			l.drain()
		case <-l.retry:
			l.retry = nil
			for name := range l.pending {
				l.dirty[name] = true
			}
		case <-resync.C:
			l.scan(ctx)
		case now := <-expire.C:
			s.expireCaches(now.Add(-cacheAge))
		}
	}
}

// nsLoop is the state of Run, owned by its goroutine.
type nsLoop struct {
	s       *Server
	pending map[string]bool // terminating namespaces not yet gone
	dirty   map[string]bool // pending namespaces to work on next
	changes <-chan store.Event
	cancel  context.CancelFunc // ends the watch behind changes
	retry   <-chan time.Time
}

func (l *nsLoop) mark(name string) {
	l.pending[name] = true
	l.dirty[name] = true
}

// scan marks every namespace that is being deleted.
func (l *nsLoop) scan(ctx context.Context) {
	for _, name := range l.s.terminatingNamespaces(ctx) {
		l.mark(name)
	}
}

// observe marks the namespace of a changed object, if it is pending.
// A closed watch marks them all: what it missed is not known.
func (l *nsLoop) observe(ev store.Event, ok bool) {
	if !ok || ev.Type == store.EventError {
		l.stopWatch()
		for name := range l.pending {
			l.dirty[name] = true
		}
		return
	}
	// Namespaced keys are /registry/RESOURCE/NAMESPACE/NAME; a
	// namespace's own is /registry/namespaces/NAME (a finalizer removed,
	// a conflicting write). A pass that changes nothing writes nothing,
	// so the namespace's own writes do not loop.
	parts := strings.SplitN(ev.Key, "/", 5)
	if len(parts) == 5 || (len(parts) == 4 && parts[2] == "namespaces") {
		if l.pending[parts[3]] {
			l.dirty[parts[3]] = true
		}
	}
}

// drain takes the events already queued, so that a burst of deletes
// leads to one pass, not one pass per event.
func (l *nsLoop) drain() {
	for l.changes != nil {
		select {
		case ev, ok := <-l.changes:
			l.observe(ev, ok)
		default:
			return
		}
	}
}

// work runs a pass over each dirty namespace, then holds the watch
// while any namespace is still pending and drops it when none is.
func (l *nsLoop) work(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	failed := false
	if len(l.pending) > 0 && l.changes == nil {
		failed = !l.startWatch(ctx)
	}
	for name := range l.dirty {
		delete(l.dirty, name)
		done, err := l.s.deleteNamespace(ctx, name)
		if err != nil {
			l.s.log.Warn("emptying namespace", "namespace", name, "err", err)
			failed = true
		}
		if done {
			delete(l.pending, name)
		}
	}
	if failed && l.retry == nil {
		l.retry = time.After(nsRetryDelay)
	}
	if len(l.pending) == 0 {
		l.stopWatch()
	}
}

// startWatch watches every object from the current revision on, and
// reports whether it could. The pending namespaces are marked dirty, so
// nothing changed before the watch began is missed.
func (l *nsLoop) startWatch(ctx context.Context) bool {
	rev, err := l.s.store.CurrentRevision(ctx)
	if err != nil {
		return false
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := l.s.store.Watch(wctx, "/registry/", rev)
	if err != nil {
		cancel()
		return false
	}
	l.changes, l.cancel = ch, cancel
	for name := range l.pending {
		l.dirty[name] = true
	}
	return true
}

func (l *nsLoop) stopWatch() {
	if l.cancel != nil {
		l.cancel()
	}
	l.changes, l.cancel = nil, nil
}

func (s *Server) terminatingNamespaces(ctx context.Context) []string {
	res, _ := registry.Lookup("namespaces")
	kvs, _, err := s.store.List(ctx, storagePrefix(res, ""), 0)
	if err != nil {
		return nil
	}
	var names []string
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			continue
		}
		if m, _ := meta.Accessor(obj); m.GetDeletionTimestamp() != nil {
			names = append(names, m.GetName())
		}
	}
	return names
}
