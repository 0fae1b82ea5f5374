package apiserver

import (
	"context"
	"errors"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// quotaResyncInterval is how often every quota is recounted, whatever
// changed: it repairs charges of creates that were admitted but failed.
const quotaResyncInterval = time.Minute

// quotaLoop keeps status.hard and status.used of every ResourceQuota:
// hard is the spec's, used the sum of what the namespace's objects that
// the quota covers consume. A namespace is recounted whenever an object
// in it changes while it has a quota, as the watch of the whole registry
// that Run holds shows, and every quotaResyncInterval. Its state is owned
// by Run's goroutine.
type quotaLoop struct {
	s         *Server
	withQuota map[string]bool // namespaces with a quota
	dirty     map[string]bool // namespaces to recount next
}

// rescan marks every namespace with a quota for a recount.
func (q *quotaLoop) rescan(ctx context.Context) {
	q.withQuota = q.s.quotaNamespaces(ctx)
	for ns := range q.withQuota {
		q.dirty[ns] = true
	}
}

// work recounts the dirty namespaces.
func (q *quotaLoop) work(ctx context.Context) {
	for ns := range q.dirty {
		delete(q.dirty, ns)
		if err := q.s.syncQuotas(ctx, ns); err != nil && ctx.Err() == nil {
			q.s.log.Warn("counting quota usage", "namespace", ns, "err", err)
		}
	}
}

// observe marks the namespace of a changed key if it has a quota; a
// change of a quota itself adds its namespace to withQuota.
func (q *quotaLoop) observe(ev store.Event) {
	quotaChanged(ev, q.withQuota, q.dirty)
}

// quotaChanged marks the namespace of a changed key if it has a quota; a
// change of a quota itself adds its namespace to withQuota.
func quotaChanged(ev store.Event, withQuota, dirty map[string]bool) {
	parts := strings.SplitN(ev.Key, "/", 5) // "", registry, RESOURCE, NAMESPACE, NAME
	if len(parts) != 5 {
		return
	}
	if parts[2] == "resourcequotas" && ev.Type != store.EventDelete {
		withQuota[parts[3]] = true
	}
	if withQuota[parts[3]] {
		dirty[parts[3]] = true
	}
}

// watchAll watches every key from the current revision on, and fills
// the policy index as of that revision. The caller must call stop once
// done with the watch.
func (s *Server) watchAll(ctx context.Context) (ch <-chan store.Event, stop context.CancelFunc, err error) {
	rev, err := s.store.CurrentRevision(ctx)
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	if ch, err = s.store.Watch(wctx, registry.Root, rev); err == nil {
		err = s.policies.load(ctx, s.store, rev)
	}
	if err == nil {
		err = s.admissionCache.load(ctx, s.store, rev, true)
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return ch, cancel, nil
}

// quotaNamespaces returns the namespaces that have a quota.
func (s *Server) quotaNamespaces(ctx context.Context) map[string]bool {
	out := map[string]bool{}
	qs, err := s.quotas(ctx, "")
	if err != nil {
		return out
	}
	for _, q := range qs {
		out[q.Namespace] = true
	}
	return out
}

// syncQuotas recounts every quota of namespace ns, holding the
// namespace's quota lock alone so that no admitted create is half done.
func (s *Server) syncQuotas(ctx context.Context, ns string) error {
	qs, err := s.quotas(ctx, ns)
	if err != nil || len(qs) == 0 {
		return err
	}
	mu := s.quotaLock(ns)
	mu.Lock()
	defer mu.Unlock()
	qs, err = s.quotas(ctx, ns) // as of now that creates wait
	if err != nil {
		return err
	}
	objs, err := s.namespaceObjects(ctx, ns, qs)
	if err != nil {
		return err
	}
	var errs []error
	for _, q := range qs {
		errs = append(errs, s.writeQuotaStatus(ctx, q, quotaUsed(q, objs, s.cfg.Now())))
	}
	return errors.Join(errs...)
}

// resObject is a stored object with its resource.
type resObject struct {
	res *registry.Resource
	obj runtime.Object
}

// namespaceObjects returns the objects of ns of the kinds some quota of
// qs counts.
func (s *Server) namespaceObjects(ctx context.Context, ns string, qs []*corev1.ResourceQuota) ([]resObject, error) {
	var out []resObject
	for _, res := range registry.All() {
		if !res.Namespaced || res.View != nil || !quotasTrack(qs, res) {
			continue
		}
		kvs, _, err := s.store.List(ctx, storagePrefix(res, ns), 0)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			obj, err := decodeStored(res, kv.Value, kv.ModRevision)
			if err != nil {
				return nil, err
			}
			out = append(out, resObject{res, obj})
		}
	}
	return out, nil
}

func quotasTrack(qs []*corev1.ResourceQuota, res *registry.Resource) bool {
	for _, q := range qs {
		for name := range q.Spec.Hard {
			if quotaTracks(res, name) {
				return true
			}
		}
	}
	return false
}

// quotaUsed sums what the objects q covers use of each resource q limits.
func quotaUsed(q *corev1.ResourceQuota, objs []resObject, now time.Time) corev1.ResourceList {
	used := corev1.ResourceList{}
	for name := range q.Spec.Hard {
		used[name] = *resource.NewQuantity(0, resource.DecimalSI)
	}
	for _, o := range objs {
		if !quotaCovers(q, o.obj) {
			continue
		}
		for name, v := range quotaUsage(o.res, o.obj, now) {
			if cur, ok := used[name]; ok {
				cur.Add(v)
				used[name] = cur
			}
		}
	}
	return used
}

// writeQuotaStatus stores q's hard limits and usage if they changed. A
// conflict means an admission charged q meanwhile (impossible under the
// lock on one server) or another server wrote it: the next change
// recounts.
func (s *Server) writeQuotaStatus(ctx context.Context, q *corev1.ResourceQuota, used corev1.ResourceList) error {
	if apiequality.Semantic.DeepEqual(q.Status.Hard, q.Spec.Hard) && apiequality.Semantic.DeepEqual(q.Status.Used, used) {
		return nil
	}
	res, _ := registry.Lookup("resourcequotas")
	q = q.DeepCopy()
	q.Status.Hard = q.Spec.Hard.DeepCopy()
	q.Status.Used = used
	data, err := registry.EncodeStored(res, q)
	if err != nil {
		return err
	}
	_, err = s.store.Update(ctx, storageKey(res, q.Namespace, q.Name), data, revisionOf(q))
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
