package apiserver

import (
	"context"
	"errors"
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

// nsScanInterval is how often Run looks for terminating namespaces it has
// not finished.
const nsScanInterval = 5 * time.Second

// Run removes terminating namespaces once their content is gone, deleting
// that content first. It returns when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(nsScanInterval)
	defer t.Stop()
	pending := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case name := <-s.nsQueue:
			pending[name] = true
		case now := <-t.C:
			s.expireCaches(now.Add(-cacheAge))
			for _, name := range s.terminatingNamespaces(ctx) {
				pending[name] = true
			}
		}
		for name := range pending {
			done, err := s.finalizeNamespace(ctx, name)
			if err != nil {
				s.log.Warn("emptying namespace", "namespace", name, "err", err)
			}
			if done {
				delete(pending, name)
			}
		}
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

// finalizeNamespace deletes everything in namespace name and, once nothing
// is left, the namespace itself. done reports that it is gone.
func (s *Server) finalizeNamespace(ctx context.Context, name string) (done bool, err error) {
	left := 0
	for _, res := range registry.All() {
		if !res.Namespaced {
			continue
		}
		kvs, _, err := s.store.List(ctx, storagePrefix(res, name), 0)
		if err != nil {
			return false, err
		}
		for _, kv := range kvs {
			left++
			obj, err := decodeStored(res, kv.Value, kv.ModRevision)
			if err != nil {
				return false, err
			}
			m, _ := meta.Accessor(obj)
			if m.GetDeletionTimestamp() != nil {
				continue
			}
			if _, err := s.deleteObject(ctx, res, name, m.GetName(), metav1.DeleteOptions{}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return false, err
			}
		}
	}
	if left > 0 {
		return false, nil
	}
	nsRes, _ := registry.Lookup("namespaces")
	_, _, err = s.store.Delete(ctx, storageKey(nsRes, "", name), 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	return true, nil
}
