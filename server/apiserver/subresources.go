package apiserver

import (
	"fmt"
	"net/http"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/registry"
)

func schemaGR(resource string) schema.GroupResource { return schema.GroupResource{Resource: resource} }

// scaleOf is the autoscaling/v1 Scale view of obj.
func scaleOf(res *registry.Resource, obj runtime.Object) *autoscalingv1.Scale {
	m, _ := meta.Accessor(obj)
	spec, status, selector := res.Replicas(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}
}

func (s *Server) serveScale(w *statusRecorder, r *http.Request, info requestInfo) error {
	res := info.Resource
	if !res.HasScale {
		return apierrors.NewNotFound(schemaGR(res.Name), info.Name+"/scale")
	}
	ctx := r.Context()
	var obj runtime.Object
	var err error
	switch info.Verb {
	case "get":
		obj, _, err = s.getObject(ctx, res, info.Namespace, info.Name)
	case "update", "patch":
		var body []byte
		var pt types.PatchType
		if info.Verb == "patch" {
			if pt, err = patchType(r); err != nil {
				return err
			}
		}
		if body, err = readBody(r); err != nil {
			return err
		}
		obj, err = s.updateObject(ctx, res, info.Namespace, info.Name, updateMain, isDryRun(r),
			func(cur runtime.Object) (runtime.Object, error) {
				return applyScale(w, r, res, cur, pt, body)
			})
	default:
		return apierrors.NewMethodNotSupported(schemaGR(res.Name+"/scale"), info.Verb)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, scaleOf(res, obj))
	return nil
}

// applyScale sets cur's replicas from a Scale body (PUT) or a patch to the
// current Scale (PATCH, pt set).
func applyScale(w http.ResponseWriter, r *http.Request, res *registry.Resource, cur runtime.Object, pt types.PatchType, body []byte) (runtime.Object, error) {
	data := body
	if pt != "" {
		original, err := jsonMarshal(scaleOf(res, cur))
		if err != nil {
			return nil, err
		}
		if data, err = patchJSON(pt, original, body, &autoscalingv1.Scale{}); err != nil {
			return nil, err
		}
	}
	var sc autoscalingv1.Scale
	if err := strictDecode(w, r, data, &sc); err != nil {
		return nil, err
	}
	if sc.Spec.Replicas < 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: "autoscaling", Kind: "Scale"}, sc.Name,
			field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
	}
	m, _ := meta.Accessor(cur)
	if sc.ResourceVersion != "" && sc.ResourceVersion != m.GetResourceVersion() {
		return nil, apierrors.NewConflict(schemaGR(res.Name), m.GetName(), fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	m.SetResourceVersion("")
	res.SetReplicas(cur, sc.Spec.Replicas)
	return cur, nil
}

// serveBinding assigns a pod to a node (POST pods/NAME/binding).
func (s *Server) serveBinding(w *statusRecorder, r *http.Request, info requestInfo) error {
	if info.Resource.Name != "pods" || info.Verb != "create" {
		return apierrors.NewNotFound(schemaGR(info.Resource.Name), info.Name+"/binding")
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var b corev1.Binding
	if err := strictDecode(w, r, data, &b); err != nil {
		return err
	}
	b.Name = info.Name
	if err := validateBinding(&b); err != nil {
		return err
	}
	_, err = s.updateObject(r.Context(), info.Resource, info.Namespace, info.Name, updateRaw, isDryRun(r),
		func(cur runtime.Object) (runtime.Object, error) { return bindPod(cur.(*corev1.Pod), b, s.cfg.Now()) })
	if err != nil {
		return err
	}
	st := statusOK()
	st.Code = http.StatusCreated
	writeJSON(w, http.StatusCreated, st)
	return nil
}

func bindPod(pod *corev1.Pod, b corev1.Binding, now time.Time) (runtime.Object, error) {
	gr := schemaGR("pods")
	if pod.DeletionTimestamp != nil {
		return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
	}
	if pod.Spec.NodeName != "" {
		return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName))
	}
	if b.UID != "" && b.UID != pod.UID {
		return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("precondition failed: UID %s does not match the pod's", b.UID))
	}
	pod.Spec.NodeName = b.Target.Name
	pod.ResourceVersion = ""
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second))}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			pod.Status.Conditions[i] = cond
			return pod, nil
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, cond)
	return pod, nil
}

// serveFinalize updates a namespace's spec.finalizers
// (PUT namespaces/NAME/finalize).
func (s *Server) serveFinalize(w *statusRecorder, r *http.Request, info requestInfo) error {
	if info.Resource.Name != "namespaces" || info.Verb != "update" {
		return apierrors.NewNotFound(schemaGR(info.Resource.Name), info.Name+"/finalize")
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var body corev1.Namespace
	if err := strictDecode(w, r, data, &body); err != nil {
		return err
	}
	obj, err := s.updateObject(r.Context(), info.Resource, "", info.Name, updateRaw, isDryRun(r),
		func(cur runtime.Object) (runtime.Object, error) {
			old := cur.DeepCopyObject()
			ns := cur.(*corev1.Namespace)
			ns.Spec.Finalizers = body.Spec.Finalizers
			// A raw update skips the kind's rules: the finalizers set
			// here must pass them all the same.
			if errs := info.Resource.ValidateUpdate(ns, old); len(errs) > 0 {
				return nil, apierrors.NewInvalid(schema.GroupKind{Kind: info.Resource.Kind}, ns.Name, errs)
			}
			ns.ResourceVersion = body.ResourceVersion
			return ns, nil
		})
	if err != nil {
		return err
	}
	return s.writeWritten(w, r, info.Resource, http.StatusOK, obj, nil)
}

// servePodWrite serves a subresource of pods that reads the whole pod
// (GET) and writes a part of its spec (PUT, PATCH), as kind says:
// pods/NAME/ephemeralcontainers may only add ephemeral containers,
// pods/NAME/resize may only change container resources.
func (s *Server) servePodWrite(w *statusRecorder, r *http.Request, info requestInfo, kind updateKind) error {
	if info.Resource.Name != "pods" {
		return apierrors.NewNotFound(schemaGR(info.Resource.Name), info.Name+"/"+info.Subresource)
	}
	switch info.Verb {
	case "get":
		obj, _, err := s.getObject(r.Context(), info.Resource, info.Namespace, info.Name)
		if err != nil {
			return err
		}
		return s.writeObject(w, r, info.Resource, http.StatusOK, obj)
	case "update":
		return s.serveUpdate(w, r, info, kind)
	case "patch":
		return s.servePatch(w, r, info, kind)
	}
	return apierrors.NewMethodNotSupported(schemaGR("pods/"+info.Subresource), info.Verb)
}
