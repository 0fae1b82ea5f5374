package apiserver

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// updateKind says which part of an object a write may change.
type updateKind int

const (
	updateMain      updateKind = iota // spec and metadata; status kept
	updateStatus                      // status only
	updateApproval                    // approval conditions only (Resource.Approval)
	updateRaw                         // server-internal: as built by the caller
	updateEphemeral                   // a pod's spec.ephemeralContainers only
	updateResize                      // a pod's container resources and resize policies only
)

// maxUpdateRetries bounds the retries of an update whose revision moved
// underneath it without the client asking for a precondition.
const maxUpdateRetries = 16

// mutateFunc builds the new object from a private copy of the current one.
type mutateFunc func(cur runtime.Object) (runtime.Object, error)

// errConflictPrecondition marks a stale resourceVersion sent by a client;
// it is not retried.
var errConflictPrecondition = errors.New("precondition")

// updateObject reads, mutates and writes back one object, retrying when
// another write got in between. A resourceVersion set on the mutated
// object is a precondition (stale → 409 Conflict).
func (s *Server) updateObject(ctx context.Context, res *registry.Resource, ns, name string, kind updateKind, dryRun bool, mutate mutateFunc) (runtime.Object, error) {
	key := storageKey(res, ns, name)
	gr := schema.GroupResource{Resource: res.Name}
	for try := 0; ; try++ {
		kv, err := s.store.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		shared, err := s.decodeShared(res, key, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		cur, old := shared.DeepCopyObject(), shared.DeepCopyObject()
		obj, err := mutate(cur)
		if err != nil {
			return nil, err
		}
		if err := s.admit(ctx, res, obj, old); err != nil {
			return nil, err
		}
		if obj, err = s.mutateWrite(ctx, res, obj, old, dryRun); err != nil {
			return nil, err
		}
		if err := s.prepareUpdate(res, kind, obj, old, kv.ModRevision); err != nil {
			return nil, err
		}
		if err := s.authorizeSigner(ctx, kind, obj, old); err != nil {
			return nil, err
		}
		if err := s.validateWrite(ctx, res, obj, old, dryRun); err != nil {
			return nil, err
		}
		undo, release := func() {}, func() {}
		if svc, ok := obj.(*corev1.Service); ok && kind == updateMain && !dryRun {
			if undo, release, err = s.allocateServiceUpdate(ctx, svc, old.(*corev1.Service)); err != nil {
				return nil, err
			}
		}
		data, err := registry.EncodeStored(res, obj)
		if err != nil {
			undo()
			return nil, err
		}
		if bytes.Equal(data, kv.Value) || dryRun {
			undo()
			if !dryRun {
				// Unchanged: the object is the one at the revision read.
				m, _ := meta.Accessor(obj)
				m.SetResourceVersion(formatRV(kv.ModRevision))
			}
			return obj, nil
		}
		if finished(res, obj) {
			if _, _, err := s.store.Delete(ctx, key, kv.ModRevision); err == nil {
				s.release(ctx, res, obj)
				return obj, nil
			} else if !errors.Is(err, store.ErrConflict) || try >= maxUpdateRetries {
				return nil, err
			}
			continue
		}
		rev, err := s.storeAnnounced(res, key, obj, data, func() (int64, error) { return s.store.Update(ctx, key, data, kv.ModRevision) })
		if err != nil {
			undo()
		}
		if errors.Is(err, store.ErrConflict) && try < maxUpdateRetries {
			continue
		}
		if err != nil {
			return nil, statusFor(err, gr, name)
		}
		release()
		m, _ := meta.Accessor(obj)
		m.SetResourceVersion(formatRV(rev))
		return obj, nil
	}
}

// prepareUpdate checks the precondition, keeps server-owned metadata and
// applies the kind's update rules and validation.
func (s *Server) prepareUpdate(res *registry.Resource, kind updateKind, obj, old runtime.Object, rev int64) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	om, _ := meta.Accessor(old)
	gr := schema.GroupResource{Resource: res.Name}
	gk := schema.GroupKind{Kind: res.Kind}
	if rv := m.GetResourceVersion(); rv != "" && rv != formatRV(rev) {
		return statusFor(store.ErrConflict, gr, om.GetName())
	}
	if m.GetName() != om.GetName() {
		return apierrors.NewBadRequest("the name of the object (" + m.GetName() + ") does not match the name on the URL (" + om.GetName() + ")")
	}
	if m.GetUID() != "" && m.GetUID() != om.GetUID() {
		return apierrors.NewConflict(gr, om.GetName(), errors.New("Precondition failed: UID in precondition: "+string(m.GetUID())+", UID in object meta: "+string(om.GetUID())))
	}
	if ns := m.GetNamespace(); res.Namespaced && ns != "" && ns != om.GetNamespace() {
		// A patch may try to move the object.
		return badRequest("the namespace of the object (%s) does not match the namespace on the request (%s)", ns, om.GetNamespace())
	}
	m.SetNamespace(om.GetNamespace())
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	m.SetGeneration(om.GetGeneration())
	m.SetSelfLink("")
	m.SetResourceVersion("")
	setTypeMeta(obj, res)
	var errs field.ErrorList
	switch kind {
	case updateMain:
		res.PrepareForUpdate(obj, old)
		errs = res.ValidateUpdate(obj, old)
	case updateStatus:
		res.PrepareForStatusUpdate(obj, old)
		errs = res.ValidateStatusUpdate(obj, old)
	case updateEphemeral:
		pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
		registry.PrepareEphemeralContainersUpdate(pod, oldPod)
		errs = registry.ValidateEphemeralContainersUpdate(pod, oldPod)
	case updateApproval:
		res.Approval.PrepareForUpdate(obj, old)
		errs = res.Approval.ValidateUpdate(obj, old)
	case updateResize:
		pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
		registry.PrepareResizeUpdate(pod, oldPod)
		errs = registry.ValidateResizeUpdate(pod, oldPod)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(gk, om.GetName(), errs)
	}
	return nil
}

// finished reports whether an object being deleted has lost its last
// finalizer and may go. Namespaces wait for their spec finalizers too. Pods being deleted wait for their node instead,
// unless their grace period is over.
func finished(res *registry.Resource, obj runtime.Object) bool {
	m, _ := meta.Accessor(obj)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		// A namespace goes once its content is gone and every spec
		// finalizer (kubernetes first) has been removed.
		return len(ns.Spec.Finalizers) == 0
	}
	if res.Name == "pods" {
		g := m.GetDeletionGracePeriodSeconds()
		return g != nil && *g == 0
	}
	return true
}

func (s *Server) serveUpdate(w *statusRecorder, r *http.Request, info requestInfo, kind updateKind) error {
	data, err := readObjectBody(w, r)
	if err != nil {
		return err
	}
	body, err := decodeObject(w, r, info.Resource, data)
	if err != nil {
		return err
	}
	bm, _ := meta.Accessor(body)
	if bm.GetName() != info.Name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", bm.GetName(), info.Name)
	}
	if ns := bm.GetNamespace(); info.Resource.Namespaced && ns != "" && ns != info.Namespace {
		return badRequest("the namespace of the provided object (%q) does not match the namespace sent on the request (%q)", ns, info.Namespace)
	}
	fm, err := s.fields.get(info.Resource, kind)
	if err != nil {
		return err
	}
	obj, err := s.updateObject(r.Context(), info.Resource, info.Namespace, info.Name, kind, isDryRun(r),
		trackUpdate(fm, managerName(r), func(runtime.Object) (runtime.Object, error) { return body.DeepCopyObject(), nil }))
	if errors.Is(err, store.ErrNotFound) && kind == updateMain && createOnUpdate(info.Resource) {
		bm.SetNamespace(info.Namespace)
		var stored []byte
		if body, err = s.trackCreate(r, info.Resource, body); err != nil {
			return err
		}
		obj, stored, err = s.createObject(r.Context(), info.Resource, body, isDryRun(r))
		if err == nil {
			return s.writeWritten(w, r, info.Resource, http.StatusCreated, obj, stored)
		}
	}
	if err != nil {
		return err
	}
	return s.writeWritten(w, r, info.Resource, http.StatusOK, obj, nil)
}

// createOnUpdate lists the kinds a PUT may create, as in Kubernetes.
func createOnUpdate(res *registry.Resource) bool {
	return res.Name == "endpoints" || res.Name == "events"
}

func (s *Server) serveStatus(w *statusRecorder, r *http.Request, info requestInfo) error {
	if !info.Resource.HasStatus {
		return apierrors.NewNotFound(schema.GroupResource{Resource: info.Resource.Name}, info.Name+"/status")
	}
	switch info.Verb {
	case "get":
		obj, _, err := s.getObject(r.Context(), info.Resource, info.Namespace, info.Name)
		if err != nil {
			return err
		}
		return s.writeObject(w, r, info.Resource, http.StatusOK, obj)
	case "update":
		return s.serveUpdate(w, r, info, updateStatus)
	case "patch":
		return s.servePatch(w, r, info, updateStatus)
	}
	return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: info.Resource.Name + "/status"}, info.Verb)
}
