package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// nsConditionTypes are the namespace conditions the deletion maintains, in
// Kubernetes' order, with the reason and message each has when all is
// well (status False).
var nsConditionTypes = []struct {
	typ             corev1.NamespaceConditionType
	reason, message string
}{
	{corev1.NamespaceDeletionDiscoveryFailure, "ResourcesDiscovered", "All resources successfully discovered"},
	{corev1.NamespaceDeletionGVParsingFailure, "ParsedGroupVersions", "All legacy kube types successfully parsed"},
	{corev1.NamespaceDeletionContentFailure, "ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
	{corev1.NamespaceContentRemaining, "ContentRemoved", "All content successfully removed"},
	{corev1.NamespaceFinalizersRemaining, "ContentHasNoFinalizers", "All content-preserving finalizers finished"},
}

// nsContent is what one pass over a terminating namespace found.
type nsContent struct {
	remaining  map[string]int // "RESOURCE.GROUP" → objects left
	finalizers map[string]int // finalizer → objects left carrying it
	failures   []string       // one per resource whose content could not be deleted
}

// deleteNamespace runs one pass over namespace name, which is being
// deleted: it deletes what is in it, records progress in its conditions
// and, once nothing is left, removes the kubernetes finalizer, which
// removes the namespace when no other finalizer holds it. done reports
// that nothing more is to be done for it here.
func (s *Server) deleteNamespace(ctx context.Context, name string) (done bool, err error) {
	nsRes, _ := registry.Lookup("namespaces")
	obj, _, err := s.getObject(ctx, nsRes, "", name)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	ns := obj.(*corev1.Namespace)
	if ns.DeletionTimestamp == nil {
		return true, nil
	}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		// Another finalizer holds it; its owner removes it through
		// namespaces/finalize, which removes the namespace.
		return s.removeFinalized(ctx, ns)
	}
	c := s.deleteContent(ctx, name)
	if err := s.setNamespaceConditions(ctx, name, c); err != nil {
		return false, err
	}
	if len(c.failures) > 0 {
		return false, fmt.Errorf("namespace %q: %s", name, strings.Join(c.failures, ", "))
	}
	if len(c.remaining) > 0 {
		return false, nil
	}
	_, err = s.updateObject(ctx, nsRes, "", name, updateRaw, false, func(cur runtime.Object) (runtime.Object, error) {
		ns := cur.(*corev1.Namespace)
		ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool {
			return f == corev1.FinalizerKubernetes
		})
		return ns, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	return err == nil, err
}

// removeFinalized removes a terminating namespace that no finalizer
// holds: one marked before it had any. done is false when the namespace
// changed meanwhile and must be looked at again.
func (s *Server) removeFinalized(ctx context.Context, ns *corev1.Namespace) (done bool, err error) {
	if len(ns.Spec.Finalizers) > 0 || len(ns.Finalizers) > 0 {
		return true, nil // their owners finalize it
	}
	nsRes, _ := registry.Lookup("namespaces")
	_, _, err = s.store.Delete(ctx, storageKey(nsRes, "", ns.Name), revisionOf(ns))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	case errors.Is(err, store.ErrConflict):
		return false, nil
	}
	return err == nil, err
}

// deleteContent deletes every object in namespace ns, of every namespaced
// kind served, the way a client's DELETE would: pods get their grace
// period, objects with finalizers are marked and wait for them. Pods are
// deleted first; the other kinds wait for them to be gone. It reports
// what is left.
func (s *Server) deleteContent(ctx context.Context, ns string) nsContent {
	c := nsContent{remaining: map[string]int{}, finalizers: map[string]int{}}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	// Pods go first, and the rest only once they are gone, as upstream
	// orders it: a pod keeps the ConfigMaps, Secrets and accounts it
	// uses until it has stopped.
	pods, _ := registry.Lookup("pods")
	if err := s.deleteResourceContent(ctx, pods, ns, opts, &c); err != nil {
		c.failures = append(c.failures, fmt.Sprintf("%s: %v", pods.Name, err))
	}
	if len(c.remaining) > 0 || len(c.failures) > 0 {
		return c
	}
	resources := registry.All()
	for _, res := range s.customResources().storage {
		resources = append(resources, res)
	}
	for _, res := range resources {
		if !res.Namespaced || res.View != nil || res == pods {
			continue // a view's objects are those of the resource it views
		}
		if err := s.deleteResourceContent(ctx, res, ns, opts, &c); err != nil {
			c.failures = append(c.failures, fmt.Sprintf("%s: %v", res.Name, err))
		}
	}
	return c
}

func (s *Server) deleteResourceContent(ctx context.Context, res *registry.Resource, ns string, opts metav1.DeleteOptions, c *nsContent) error {
	kvs, _, err := s.store.List(ctx, storagePrefix(res, ns), 0)
	if err != nil {
		return err
	}
	gr := res.Name + "." + res.Group
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return err
		}
		m, _ := meta.Accessor(obj)
		if m.GetDeletionTimestamp() == nil {
			out, err := s.deleteObject(ctx, res, ns, m.GetName(), opts)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if m, _ = meta.Accessor(out); m.GetDeletionTimestamp() == nil {
				continue // removed at once
			}
		}
		c.remaining[gr]++
		for _, f := range m.GetFinalizers() {
			c.finalizers[f]++
		}
	}
	return nil
}

// setNamespaceConditions records a pass's findings in the namespace's
// deletion conditions, writing only when one changed.
func (s *Server) setNamespaceConditions(ctx context.Context, name string, c nsContent) error {
	want := nsConditions(c)
	nsRes, _ := registry.Lookup("namespaces")
	_, err := s.updateObject(ctx, nsRes, "", name, updateStatus, false, func(cur runtime.Object) (runtime.Object, error) {
		ns := cur.(*corev1.Namespace)
		now := metav1.NewTime(s.cfg.Now().Truncate(1e9))
		for _, w := range want {
			i := slices.IndexFunc(ns.Status.Conditions, func(c corev1.NamespaceCondition) bool { return c.Type == w.Type })
			if i < 0 {
				w.LastTransitionTime = now
				ns.Status.Conditions = append(ns.Status.Conditions, w)
				continue
			}
			old := &ns.Status.Conditions[i]
			if old.Status != w.Status {
				old.LastTransitionTime = now
			}
			old.Status, old.Reason, old.Message = w.Status, w.Reason, w.Message
		}
		return ns, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// nsConditions gives the five deletion conditions for a pass's findings,
// worded as Kubernetes' namespace controller words them.
func nsConditions(c nsContent) []corev1.NamespaceCondition {
	out := make([]corev1.NamespaceCondition, 0, len(nsConditionTypes))
	for _, t := range nsConditionTypes {
		out = append(out, corev1.NamespaceCondition{Type: t.typ, Status: corev1.ConditionFalse, Reason: t.reason, Message: t.message})
	}
	set := func(i int, reason, message string) {
		out[i].Status, out[i].Reason, out[i].Message = corev1.ConditionTrue, reason, message
	}
	if len(c.failures) > 0 {
		msgs := slices.Clone(c.failures)
		sort.Strings(msgs)
		set(2, "ContentDeletionFailed", fmt.Sprintf("Failed to delete all resource types, %d remaining: %s", len(msgs), strings.Join(msgs, ", ")))
	}
	if len(c.remaining) > 0 {
		set(3, "SomeResourcesRemain", "Some resources are remaining: "+countList(c.remaining, "%s has %d resource instances"))
	}
	if len(c.finalizers) > 0 {
		set(4, "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: "+countList(c.finalizers, "%s in %d resource instances"))
	}
	return out
}

// countList formats each name and count of m with format, sorted and
// joined by ", ".
func countList(m map[string]int, format string) string {
	parts := make([]string, 0, len(m))
	for k, n := range m {
		parts = append(parts, fmt.Sprintf(format, k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
