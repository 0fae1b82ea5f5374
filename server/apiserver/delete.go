package apiserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// protectedNamespaces always exist.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// deleteOptions reads DeleteOptions from the body or the query.
func deleteOptions(r *http.Request) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	data, err := readBody(r)
	if err != nil {
		return opts, err
	}
	if len(data) > 0 {
		if err := strictDecode(nil, r, data, &opts); err != nil {
			return opts, err
		}
		if errs := metavalidation.ValidateDryRun(field.NewPath("dryRun"), opts.DryRun); len(errs) > 0 {
			return opts, apierrors.NewInvalid(metaGK("DeleteOptions"), "", errs)
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return opts, badRequest("invalid gracePeriodSeconds %q: must be a non-negative integer", v)
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if isDryRun(r) {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if p := opts.PropagationPolicy; p != nil && *p != metav1.DeletePropagationBackground &&
		*p != metav1.DeletePropagationForeground && *p != metav1.DeletePropagationOrphan {
		return opts, badRequest("propagationPolicy %q is not one of Background, Foreground, Orphan", *p)
	}
	return opts, nil
}

func (s *Server) serveDelete(w *statusRecorder, r *http.Request, info requestInfo) error {
	opts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	obj, err := s.deleteObject(r.Context(), info.Resource, info.Namespace, info.Name, opts)
	if err != nil {
		return err
	}
	return s.writeWritten(w, r, info.Resource, http.StatusOK, obj, nil)
}

// deleteObject deletes one object or, where it must linger (finalizers, a
// pod on a node, a namespace with content), marks it for deletion. It
// returns the object as last seen.
func (s *Server) deleteObject(ctx context.Context, res *registry.Resource, ns, name string, opts metav1.DeleteOptions) (runtime.Object, error) {
	if res.Name == "namespaces" && protectedNamespaces[name] {
		return nil, apierrors.NewForbidden(schemaGR("namespaces"), name, errString("this namespace may not be deleted"))
	}
	key := storageKey(res, ns, name)
	dryRun := len(opts.DryRun) > 0
	for try := 0; ; try++ {
		kv, err := s.store.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		m, _ := meta.Accessor(obj)
		if err := checkPreconditions(res, m, opts.Preconditions); err != nil {
			return nil, err
		}
		if err := s.admitDelete(ctx, res, obj, dryRun); err != nil {
			return nil, err
		}
		if crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok && crd.DeletionTimestamp == nil {
			markCRDTerminating(crd, s.cfg.Now())
		}
		if f := propagationFinalizer(opts); f != "" && m.GetDeletionTimestamp() == nil && !slices.Contains(m.GetFinalizers(), f) {
			m.SetFinalizers(append(m.GetFinalizers(), f))
		}
		if lingers(res, obj, opts) {
			out, err := s.markDeleted(ctx, res, obj, kv.ModRevision, opts, dryRun)
			if errors.Is(err, store.ErrConflict) && try < maxUpdateRetries {
				// Written meanwhile (a controller's status): mark the
				// object as it is now.
				continue
			}
			return out, err
		}
		if dryRun {
			return obj, nil
		}
		_, _, err = s.store.Delete(ctx, key, kv.ModRevision)
		if errors.Is(err, store.ErrConflict) && try < maxUpdateRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.release(ctx, res, obj)
		return obj, nil
	}
}

// propagationFinalizer is the finalizer that asks the garbage collector to
// orphan the dependents of an object, or to delete them before it.
func propagationFinalizer(opts metav1.DeleteOptions) string {
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan:
			return metav1.FinalizerOrphanDependents
		case metav1.DeletePropagationForeground:
			return metav1.FinalizerDeleteDependents
		}
		return ""
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return metav1.FinalizerOrphanDependents
	}
	return ""
}

func checkPreconditions(res *registry.Resource, m metav1.Object, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	if p.UID != nil && *p.UID != m.GetUID() {
		return apierrors.NewConflict(schemaGR(res.Name), m.GetName(), errString(
			"Precondition failed: UID in precondition: "+string(*p.UID)+", UID in object meta: "+string(m.GetUID())))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return apierrors.NewConflict(schemaGR(res.Name), m.GetName(), errString(
			"Precondition failed: ResourceVersion in precondition: "+*p.ResourceVersion+", ResourceVersion in object meta: "+m.GetResourceVersion()))
	}
	return nil
}

// lingers reports whether obj must be marked for deletion rather than
// removed: it has finalizers, it is a namespace (its content goes first),
// or it is a pod on a node that must stop its containers first.
func lingers(res *registry.Resource, obj runtime.Object, opts metav1.DeleteOptions) bool {
	m, _ := meta.Accessor(obj)
	if len(m.GetFinalizers()) > 0 || res.Name == "namespaces" {
		return true
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	return opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds > 0
}

// markDeleted sets deletionTimestamp (and, for pods, the grace period).
func (s *Server) markDeleted(ctx context.Context, res *registry.Resource, obj runtime.Object, rev int64, opts metav1.DeleteOptions, dryRun bool) (runtime.Object, error) {
	m, _ := meta.Accessor(obj)
	grace := gracePeriod(obj, opts)
	if dt := m.GetDeletionTimestamp(); dt != nil {
		cur := m.GetDeletionGracePeriodSeconds()
		if cur == nil || grace >= *cur {
			return obj, nil
		}
	} else if g := m.GetGeneration(); g > 0 {
		// As in Kubernetes, the first mark is a change of what the
		// object's controllers are asked to do: its generation moves on.
		m.SetGeneration(g + 1)
	}
	now := s.cfg.Now()
	m.SetDeletionTimestamp(&metav1.Time{Time: now.Add(time.Duration(grace) * time.Second).Truncate(time.Second)})
	m.SetDeletionGracePeriodSeconds(&grace)
	if ns, ok := obj.(*corev1.Namespace); ok {
		ns.Status.Phase = corev1.NamespaceTerminating
	}
	if dryRun {
		return obj, nil
	}
	data, err := registry.EncodeStored(res, obj)
	if err != nil {
		return nil, err
	}
	newRev, err := s.store.Update(ctx, storageKey(res, m.GetNamespace(), m.GetName()), data, rev)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(formatRV(newRev))
	if res.Name == "namespaces" {
		s.namespaceDeleted(m.GetName())
	}
	return obj, nil
}

func gracePeriod(obj runtime.Object, opts metav1.DeleteOptions) int64 {
	if opts.GracePeriodSeconds != nil {
		return *opts.GracePeriodSeconds
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		// Nothing runs a pod that is unbound or finished: no grace.
		if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return 0
		}
		if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
			return *g
		}
		return corev1.DefaultTerminationGracePeriodSeconds
	}
	return 0
}

func (s *Server) serveDeleteCollection(w *statusRecorder, r *http.Request, info requestInfo) error {
	res := info.Resource
	lopts, err := parseListOptions(r, res)
	if err != nil {
		return err
	}
	opts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	kvs, rev, err := s.store.List(r.Context(), storagePrefix(res, info.Namespace), 0)
	if err != nil {
		return err
	}
	var items []runtime.Object
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return err
		}
		if !lopts.matches(res, obj) {
			continue
		}
		m, _ := meta.Accessor(obj)
		out, err := s.deleteObject(r.Context(), res, m.GetNamespace(), m.GetName(), opts)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		items = append(items, out)
	}
	list := res.NewList()
	if err := meta.SetList(list, items); err != nil {
		return err
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(formatRV(rev))
	setListKind(list, res)
	return s.writeList(w, r, res, list, items)
}
