package controllers

import (
	"context"
	"errors"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// checkOwners deletes m when none of its owners exists any more, or drops
// the references to missing owners when some remain.
func (gc *GarbageCollector) checkOwners(ctx context.Context, k *gcKind, m metav1.Object) error {
	refs := m.GetOwnerReferences()
	var gone []metav1.OwnerReference
	for _, r := range refs {
		exists, err := gc.ownerExists(ctx, k, m.GetNamespace(), r)
		if errors.Is(err, errUnknownOwner) {
			continue
		}
		if err != nil {
			return err
		}
		if !exists {
			gone = append(gone, r)
		}
	}
	switch {
	case len(gone) == 0:
		return nil
	case len(gone) == len(refs):
		gc.lg.Info("deleting object whose owners are gone", "resource", k.resource, "namespace", m.GetNamespace(), "name", m.GetName())
		return gc.delete(ctx, k, m, metav1.DeletePropagationBackground)
	}
	keep := slices.DeleteFunc(slices.Clone(refs), func(r metav1.OwnerReference) bool {
		return slices.ContainsFunc(gone, func(g metav1.OwnerReference) bool { return g.UID == r.UID })
	})
	return ignoreNotFound(gc.setOwnerRefs(ctx, k, m, keep))
}

// setOwnerRefs sets the ownerReferences of m, an object of k, to refs.
func (gc *GarbageCollector) setOwnerRefs(ctx context.Context, k *gcKind, m metav1.Object, refs []metav1.OwnerReference) error {
	if k.meta != nil {
		if refs == nil {
			refs = []metav1.OwnerReference{}
		}
		return patchCustomMeta(ctx, k, m, metaPatchFields{OwnerReferences: &refs})
	}
	return patchOwnerRefs(ctx, gc.rest(k), k.resource, m, refs)
}

// ownerExists reports whether the owner r of an object in namespace ns
// (of kind dep) exists with r's uid.
func (gc *GarbageCollector) ownerExists(ctx context.Context, dep *gcKind, ns string, r metav1.OwnerReference) (bool, error) {
	o, err := gc.owner(ctx, dep, ns, r)
	return o != nil, err
}

// owner returns the owner r of an object in namespace ns (of kind dep),
// nil if no object with r's uid exists. A cache miss is confirmed with
// the API, since the cache may not show a new owner yet.
func (gc *GarbageCollector) owner(ctx context.Context, dep *gcKind, ns string, r metav1.OwnerReference) (metav1.Object, error) {
	k := gc.kindOf(r)
	if k == nil || (k.namespaced && !dep.namespaced) {
		return nil, errUnknownOwner
	}
	key := cache.NewObjectName(k.namespace(ns), r.Name).String()
	if obj, ok, _ := k.informer.GetIndexer().GetByKey(key); ok {
		if m, err := meta.Accessor(obj); err == nil && m.GetUID() == r.UID {
			return m, nil
		}
	}
	var m metav1.Object
	if k.meta != nil {
		obj, err := k.metaClient(ns).Get(ctx, r.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		m = obj
	} else {
		req := gc.rest(k).Get().Resource(k.resource).Name(r.Name)
		if k.namespaced {
			// client-go refuses an empty namespace with a name.
			req = req.Namespace(ns)
		}
		obj, err := req.Do(ctx).Get()
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if m, err = meta.Accessor(obj); err != nil {
			return nil, err
		}
	}
	if m.GetUID() != r.UID {
		return nil, nil
	}
	return m, nil
}

// hasSolidOwner reports whether d has an owner other than the one with
// uid except that exists and is not itself waiting for its dependents to
// be deleted: such a dependent outlives a foreground deletion of that
// owner, which only loses its reference, as upstream.
func (gc *GarbageCollector) hasSolidOwner(ctx context.Context, d dependent, except types.UID) (bool, error) {
	for _, r := range d.obj.GetOwnerReferences() {
		if r.UID == except {
			continue
		}
		o, err := gc.owner(ctx, d.kind, d.obj.GetNamespace(), r)
		if errors.Is(err, errUnknownOwner) {
			continue
		}
		if err != nil {
			return false, err
		}
		if o != nil && (o.GetDeletionTimestamp() == nil || !slices.Contains(o.GetFinalizers(), metav1.FinalizerDeleteDependents)) {
			return true, nil
		}
	}
	return false, nil
}

// delete deletes m if it is still the object with m's uid.
func (gc *GarbageCollector) delete(ctx context.Context, k *gcKind, m metav1.Object, policy metav1.DeletionPropagation) error {
	uid := m.GetUID()
	opts := &metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}}
	var err error
	if k.meta != nil {
		err = k.metaClient(m.GetNamespace()).Delete(ctx, m.GetName(), *opts)
	} else {
		err = gc.rest(k).Delete().
			Namespace(m.GetNamespace()).Resource(k.resource).Name(m.GetName()).
			Body(opts).Do(ctx).Error()
	}
	if apierrors.IsConflict(err) {
		// Replaced by another object of the same name: not ours to delete.
		return nil
	}
	return ignoreNotFound(err)
}

// dependent is an object with an owner reference to some owner.
type dependent struct {
	kind     *gcKind
	obj      metav1.Object
	blocking bool // the reference has blockOwnerDeletion
}

// dependents returns the cached objects that reference owner, blocking
// ones first.
func (gc *GarbageCollector) dependents(owner metav1.Object) []dependent {
	var out []dependent
	for _, k := range gc.kindList() {
		objs, _ := k.informer.GetIndexer().ByIndex(ownerIndex, string(owner.GetUID()))
		for _, o := range objs {
			m, err := meta.Accessor(o)
			if err != nil {
				continue
			}
			d := dependent{kind: k, obj: m}
			for _, r := range m.GetOwnerReferences() {
				if r.UID == owner.GetUID() && r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
					d.blocking = true
				}
			}
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b dependent) int { return cmpBool(b.blocking, a.blocking) })
	return out
}

// deleteDependents carries out a foreground deletion of owner: its
// dependents are deleted, and the foregroundDeletion finalizer is removed
// once no blocking dependent is left.
func (gc *GarbageCollector) deleteDependents(ctx context.Context, k *gcKind, key string, owner metav1.Object) error {
	var errs []error
	blocked := false
	for _, d := range gc.dependents(owner) {
		solid, err := gc.hasSolidOwner(ctx, d, owner.GetUID())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if solid {
			refs := withoutOwner(d.obj.GetOwnerReferences(), owner.GetUID())
			errs = append(errs, ignoreNotFound(gc.setOwnerRefs(ctx, d.kind, d.obj, refs)))
			continue
		}
		policy := metav1.DeletePropagationBackground
		if d.obj.GetDeletionTimestamp() == nil {
			deps := gc.dependents(d.obj)
			if len(deps) > 0 {
				policy = metav1.DeletePropagationForeground
			}
			// A dependent of d that waits for its own dependents may be
			// waiting, through a circle of references, for this owner:
			// as upstream, d stops blocking its owners before it is
			// deleted, which breaks the circle.
			if d.blocking && slices.ContainsFunc(deps, func(dd dependent) bool { return waitsForGC(dd.obj) }) {
				if err := gc.setOwnerRefs(ctx, d.kind, d.obj, unblocked(d.obj.GetOwnerReferences())); err != nil {
					errs = append(errs, ignoreNotFound(err))
					continue
				}
				d.blocking = false
			}
		}
		if d.blocking {
			blocked = true
		}
		if d.obj.GetDeletionTimestamp() != nil {
			continue
		}
		errs = append(errs, gc.delete(ctx, d.kind, d.obj, policy))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if blocked {
		gc.loop.addAfter(key, gcRecheck)
		return nil
	}
	gc.lg.Info("dependents deleted", "resource", k.resource, "namespace", owner.GetNamespace(), "name", owner.GetName())
	return gc.removeFinalizer(ctx, k, owner, metav1.FinalizerDeleteDependents)
}

// unblocked is refs with blockOwnerDeletion cleared.
func unblocked(refs []metav1.OwnerReference) []metav1.OwnerReference {
	out := slices.Clone(refs)
	for i := range out {
		out[i].BlockOwnerDeletion = nil
	}
	return out
}

// orphan removes owner's reference from its dependents, then the orphan
// finalizer from owner.
func (gc *GarbageCollector) orphan(ctx context.Context, k *gcKind, owner metav1.Object) error {
	var errs []error
	for _, d := range gc.dependents(owner) {
		refs := withoutOwner(d.obj.GetOwnerReferences(), owner.GetUID())
		errs = append(errs, ignoreNotFound(gc.setOwnerRefs(ctx, d.kind, d.obj, refs)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	gc.lg.Info("dependents orphaned", "resource", k.resource, "namespace", owner.GetNamespace(), "name", owner.GetName())
	return gc.removeFinalizer(ctx, k, owner, metav1.FinalizerOrphanDependents)
}

func (gc *GarbageCollector) removeFinalizer(ctx context.Context, k *gcKind, m metav1.Object, f string) error {
	fins := slices.DeleteFunc(slices.Clone(m.GetFinalizers()), func(s string) bool { return s == f })
	if k.meta != nil {
		if fins == nil {
			fins = []string{}
		}
		return ignoreNotFound(patchCustomMeta(ctx, k, m, metaPatchFields{Finalizers: &fins}))
	}
	return ignoreNotFound(patchFinalizers(ctx, gc.rest(k), k.resource, m, fins))
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
