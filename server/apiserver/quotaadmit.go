package apiserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// quotaLock returns the lock of namespace ns's quota accounting. Creates
// hold it shared from charging their quotas until their object is stored
// (or refused); the quota controller holds it alone while it counts, so it
// never counts a charge whose object is not yet stored and lowers a
// quota's usage under what admitted creates use.
func (s *Server) quotaLock(ns string) *sync.RWMutex {
	mu, _ := s.quotaLocks.LoadOrStore(ns, new(sync.RWMutex))
	return mu.(*sync.RWMutex)
}

// quotas returns the ResourceQuotas of namespace ns (all namespaces
// for "") with their revisions.
func (s *Server) quotas(ctx context.Context, ns string) ([]*corev1.ResourceQuota, error) {
	res, ok := registry.Lookup("resourcequotas")
	if !ok || (ns != "" && !s.policies.mayHave(res.Name, ns)) {
		return nil, nil
	}
	kvs, _, err := s.store.List(ctx, storagePrefix(res, ns), 0)
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.ResourceQuota, 0, len(kvs))
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		out = append(out, obj.(*corev1.ResourceQuota))
	}
	return out, nil
}

// maxQuotaRetries bounds the conflicting writes of one quota's usage.
const maxQuotaRetries = 64

// chargeQuota admits the create of obj against the quotas of its
// namespace, as Kubernetes' ResourceQuota admission does: a create that
// would take a quota's usage over its hard limit is refused with 403
// Forbidden naming the quota and the resources; otherwise each quota it
// counts against has status.used raised by a write conditional on the
// quota's revision, retried on conflict, so concurrent creates never
// admit more than a quota allows. A dry run only checks. The caller must
// call done once obj is stored or refused.
func (s *Server) chargeQuota(ctx context.Context, res *registry.Resource, obj runtime.Object, dryRun bool) (done func(), err error) {
	m, _ := meta.Accessor(obj)
	ns := m.GetNamespace()
	qs, err := s.quotas(ctx, ns)
	if err != nil || len(qs) == 0 {
		return func() {}, err
	}
	mu := s.quotaLock(ns)
	mu.RLock()
	usage := quotaUsage(res, obj, s.cfg.Now())
	for _, q := range qs {
		if err := s.chargeOne(ctx, res, obj, q, usage, dryRun); err != nil {
			mu.RUnlock()
			return nil, err
		}
	}
	return mu.RUnlock, nil
}

// chargeOne admits obj against quota q, re-reading q after a conflict.
func (s *Server) chargeOne(ctx context.Context, res *registry.Resource, obj runtime.Object, q *corev1.ResourceQuota, usage corev1.ResourceList, dryRun bool) error {
	qres, _ := registry.Lookup("resourcequotas")
	key := storageKey(qres, q.Namespace, q.Name)
	for try := 0; ; try++ {
		if !quotaCovers(q, obj) {
			return nil
		}
		used, err := admitAgainst(res, obj, q, usage)
		if err != nil || used == nil || dryRun {
			return err
		}
		q = q.DeepCopy()
		q.Status.Used = used
		data, err := registry.EncodeStored(qres, q)
		if err != nil {
			return err
		}
		_, err = s.store.Update(ctx, key, data, revisionOf(q))
		if !errors.Is(err, store.ErrConflict) || try >= maxQuotaRetries {
			return err
		}
		kv, err := s.store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil // the quota went meanwhile
		}
		if err != nil {
			return err
		}
		cur, err := decodeStored(qres, kv.Value, kv.ModRevision)
		if err != nil {
			return err
		}
		q = cur.(*corev1.ResourceQuota)
	}
}

// admitAgainst returns q's usage with obj's added, nil when q limits
// nothing obj uses, or the 403 that refuses obj.
func admitAgainst(res *registry.Resource, obj runtime.Object, q *corev1.ResourceQuota, usage corev1.ResourceList) (corev1.ResourceList, error) {
	var limited []corev1.ResourceName
	for name := range q.Status.Hard {
		if quotaTracks(res, name) {
			limited = append(limited, name)
		}
	}
	if len(limited) == 0 {
		return nil, nil
	}
	sort.Slice(limited, func(i, j int) bool { return limited[i] < limited[j] })
	if pod, ok := obj.(*corev1.Pod); ok {
		if err := podConstraints(pod, limited); err != nil {
			return nil, admissionForbidden(res, obj, fmt.Sprintf("failed quota: %s: %v", q.Name, err))
		}
	}
	for _, name := range limited {
		if _, ok := q.Status.Used[name]; !ok {
			return nil, admissionForbidden(res, obj, fmt.Sprintf("status unknown for quota: %s, resources: %s", q.Name, joinNames(limited)))
		}
	}
	used := q.Status.Used.DeepCopy()
	var exceeded []corev1.ResourceName
	for _, name := range limited {
		req, ok := usage[name]
		if !ok {
			continue
		}
		n := used[name].DeepCopy()
		n.Add(req)
		used[name] = n
		if n.Cmp(q.Status.Hard[name]) > 0 {
			exceeded = append(exceeded, name)
		}
	}
	if len(exceeded) > 0 {
		return nil, admissionForbidden(res, obj, fmt.Sprintf("exceeded quota: %s, requested: %s, used: %s, limited: %s",
			q.Name, listOf(usage, exceeded), listOf(q.Status.Used, exceeded), listOf(q.Status.Hard, exceeded)))
	}
	return used, nil
}

// listOf prints the quantities of l named in names as Kubernetes does:
// "pods=1,requests.cpu=500m".
func listOf(l corev1.ResourceList, names []corev1.ResourceName) string {
	parts := make([]string, 0, len(names))
	for _, n := range names {
		q := l[n]
		parts = append(parts, string(n)+"="+q.String())
	}
	return strings.Join(parts, ",")
}

func joinNames(names []corev1.ResourceName) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = string(n)
	}
	return strings.Join(parts, ",")
}

// admissionForbidden is the 403 an admission plugin answers a create of obj
// with, naming the object as Kubernetes does before its name is
// generated.
func admissionForbidden(res *registry.Resource, obj runtime.Object, msg string) error {
	return apierrors.NewForbidden(schema.GroupResource{Group: res.Group, Resource: res.Name}, admissionName(obj), errString(msg))
}

// admissionName is the name admission errors give obj: its name, else
// its generateName, else "Unknown".
func admissionName(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "Unknown"
	}
	if n := m.GetName(); n != "" {
		return n
	}
	if n := m.GetGenerateName(); n != "" {
		return n
	}
	return "Unknown"
}
