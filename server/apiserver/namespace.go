package apiserver

import (
	"context"
	"errors"
	"strings"
	"time"

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

// nsLoop empties terminating namespaces and removes them once their
// content is gone. A namespace is worked on when it is marked for
// deletion and again whenever an object in it changes (a pod finishing
// its grace period, a finalizer removed), as the watch of the whole
// registry that Run holds shows. Its state is owned by Run's goroutine.
type nsLoop struct {
	s       *Server
	pending map[string]bool // terminating namespaces not yet gone
	dirty   map[string]bool // pending namespaces to work on next
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

// redo marks every pending namespace dirty: after a failure, or when the
// watch restarts and what it missed is not known.
func (l *nsLoop) redo() {
	for name := range l.pending {
		l.dirty[name] = true
	}
}

// observe marks the namespace of a changed object, if it is pending.
func (l *nsLoop) observe(ev store.Event) {
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

// work runs a pass over each dirty namespace.
func (l *nsLoop) work(ctx context.Context) {
	failed := false
	for name := range l.dirty {
		delete(l.dirty, name)
		done, err := l.s.deleteNamespace(ctx, name)
		if err != nil && ctx.Err() == nil {
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
