package apiserver

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	policyv1beta1 "k8s.io/api/policy/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/registry"
)

// The eviction subresource deletes a pod unless that would break its
// PodDisruptionBudget, as in Kubernetes: POST pods/NAME/eviction with a
// policy/v1 (or v1beta1) Eviction. kubectl drain uses it when discovery
// lists it, and retries while it answers 429.

// evictionResource is pods/eviction in /api/v1 discovery.
var evictionResource = metav1.APIResource{
	Name: "pods/eviction", Namespaced: true, Group: registry.GroupPolicy, Version: "v1", Kind: "Eviction",
	Verbs: metav1.Verbs{"create"},
}

// evictionRefused is the message of a 429, as Kubernetes words it.
const evictionRefused = "Cannot evict pod as it would violate the pod's disruption budget."

func (s *Server) serveEviction(w *statusRecorder, r *http.Request, info requestInfo) error {
	if info.Resource.Name != "pods" || info.Verb != "create" {
		return apierrors.NewNotFound(schemaGR(info.Resource.Name), info.Name+"/eviction")
	}
	ev, err := decodeEviction(w, r)
	if err != nil {
		return err
	}
	if ev.Name != "" && ev.Name != info.Name {
		return badRequest("name in URL does not match name in Eviction object")
	}
	if ev.Namespace != "" && ev.Namespace != info.Namespace {
		return badRequest("namespace in URL does not match namespace in Eviction object")
	}
	var opts metav1.DeleteOptions
	if ev.DeleteOptions != nil {
		opts = *ev.DeleteOptions
	}
	if isDryRun(r) {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if err := s.evict(r.Context(), info.Resource, info.Namespace, info.Name, opts); err != nil {
		return err
	}
	st := statusOK()
	st.Code = http.StatusCreated
	writeJSON(w, http.StatusCreated, st)
	return nil
}

// decodeEviction reads an Eviction body, JSON or protobuf, of
// policy/v1 or policy/v1beta1 (both have the same fields).
func decodeEviction(w http.ResponseWriter, r *http.Request) (*policyv1.Eviction, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	ev := &policyv1.Eviction{}
	if isProtobuf(r) {
		out, _, err := protobufCodec.Decode(data, nil, nil)
		if err != nil {
			return nil, badRequest("the body of the request could not be decoded as protobuf: %v", err)
		}
		switch e := out.(type) {
		case *policyv1.Eviction:
			ev = e
		case *policyv1beta1.Eviction:
			ev = &policyv1.Eviction{TypeMeta: e.TypeMeta, ObjectMeta: e.ObjectMeta, DeleteOptions: e.DeleteOptions}
		default:
			return nil, badRequest("the body of the request has kind %q, want \"Eviction\" for pods/eviction", out.GetObjectKind().GroupVersionKind().Kind)
		}
	} else if err := strictDecode(w, r, data, ev); err != nil {
		return nil, err
	}
	gvk := ev.GroupVersionKind()
	if gvk.Kind != "" && gvk.Kind != "Eviction" {
		return nil, badRequest("the body of the request has kind %q, want \"Eviction\" for pods/eviction", gvk.Kind)
	}
	if gv := gvk.GroupVersion().String(); gv != "" && gv != "policy/v1" && gv != "policy/v1beta1" {
		return nil, badRequest("the body of the request has apiVersion %q, want \"policy/v1\" or \"policy/v1beta1\" for Eviction", gv)
	}
	return ev, nil
}

// evict deletes the pod with opts if its disruption budget allows, taking
// one disruption from the budget.
func (s *Server) evict(ctx context.Context, pods *registry.Resource, ns, name string, opts metav1.DeleteOptions) error {
	obj, _, err := s.getObject(ctx, pods, ns, name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	if opts.Preconditions == nil {
		opts.Preconditions = &metav1.Preconditions{UID: &pod.UID}
	}
	if !ignoresBudget(pod) {
		if err := s.takeDisruption(ctx, pod, len(opts.DryRun) > 0); err != nil {
			return err
		}
	}
	if rv := opts.Preconditions.ResourceVersion; rv != nil && *rv != pod.ResourceVersion {
		return apierrors.NewConflict(corev1.Resource("pods"), name,
			fmt.Errorf("the resourceVersion in the precondition (%s) does not match the object's (%s)", *rv, pod.ResourceVersion))
	}
	marked, err := s.markDisrupted(ctx, pods, pod, len(opts.DryRun) > 0)
	if err != nil {
		return err
	}
	if opts.Preconditions.ResourceVersion != nil && marked != nil {
		rv := marked.(*corev1.Pod).ResourceVersion
		opts.Preconditions.ResourceVersion = &rv
	}
	_, err = s.deleteObject(ctx, pods, ns, name, opts)
	return err
}

// markDisrupted adds the DisruptionTarget condition to a pod that has not
// finished, as Kubernetes does before an eviction deletes it, so that a
// Job's pod failure policy can tell an eviction from a failure.
// It returns the pod as written, nil when it left it alone.
func (s *Server) markDisrupted(ctx context.Context, pods *registry.Resource, pod *corev1.Pod, dryRun bool) (runtime.Object, error) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil, nil
	}
	return s.updateObject(ctx, pods, pod.Namespace, pod.Name, updateStatus, dryRun, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.(*corev1.Pod)
		if p.UID != pod.UID {
			return nil, apierrors.NewConflict(corev1.Resource("pods"), pod.Name, fmt.Errorf("the pod was replaced"))
		}
		cond := corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting",
			LastTransitionTime: metav1.Now(),
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
				p.Status.Conditions[i] = cond
				return p, nil
			}
		}
		p.Status.Conditions = append(p.Status.Conditions, cond)
		return p, nil
	})
}

// ignoresBudget reports whether pod may go without asking its budget: it
// is being deleted already, has finished, or has not started.
func ignoresBudget(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending, "":
		return true
	}
	return pod.DeletionTimestamp != nil
}

// takeDisruption takes one disruption from the pod's budget, if it has
// one, recording the pod as disrupted; 429 when none is left.
func (s *Server) takeDisruption(ctx context.Context, pod *corev1.Pod, dryRun bool) error {
	pdbs, err := s.podBudgets(ctx, pod)
	if err != nil || len(pdbs) == 0 {
		return err
	}
	if len(pdbs) > 1 {
		return apierrors.NewInternalError(fmt.Errorf("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."))
	}
	res, _ := registry.Lookup("poddisruptionbudgets")
	_, err = s.updateObject(ctx, res, pod.Namespace, pdbs[0].Name, updateRaw, dryRun, func(cur runtime.Object) (runtime.Object, error) {
		pdb := cur.(*policyv1.PodDisruptionBudget)
		if err := checkBudget(pdb, pod); err != nil {
			return nil, err
		}
		if !isPodReady(pod) {
			return pdb, nil // an unhealthy pod takes nothing from the budget
		}
		pdb.Status.DisruptionsAllowed--
		if pdb.Status.DisruptedPods == nil {
			pdb.Status.DisruptedPods = map[string]metav1.Time{}
		}
		pdb.Status.DisruptedPods[pod.Name] = metav1.NewTime(s.cfg.Now())
		pdb.ResourceVersion = ""
		return pdb, nil
	})
	return err
}

// checkBudget says whether pdb lets pod go: a ready pod needs a disruption
// allowed by a budget the disruption controller has seen; an unready one
// goes when the budget is met anyway (IfHealthyBudget) or always
// (AlwaysAllow).
func checkBudget(pdb *policyv1.PodDisruptionBudget, pod *corev1.Pod) error {
	if !isPodReady(pod) {
		p := pdb.Spec.UnhealthyPodEvictionPolicy
		if p != nil && *p == policyv1.AlwaysAllow || pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0 {
			return nil
		}
	}
	switch {
	case pdb.Status.ObservedGeneration < pdb.Generation:
		return tooManyRequests(fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdb.Name))
	case pdb.Status.DisruptionsAllowed < 0:
		return apierrors.NewForbidden(schemaGR("poddisruptionbudgets"), pdb.Name, fmt.Errorf("pdb disruptions allowed is negative"))
	case pdb.Status.DisruptionsAllowed == 0:
		return tooManyRequests(fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently",
			pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
	}
	return nil
}

func tooManyRequests(cause string) error {
	err := apierrors.NewTooManyRequests(evictionRefused, 0)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: policyv1.DisruptionBudgetCause, Message: cause,
	})
	return err
}

// podBudgets returns the budgets in pod's namespace whose selector
// matches it.
func (s *Server) podBudgets(ctx context.Context, pod *corev1.Pod) ([]*policyv1.PodDisruptionBudget, error) {
	res, _ := registry.Lookup("poddisruptionbudgets")
	kvs, _, err := s.store.List(ctx, storagePrefix(res, pod.Namespace), 0)
	if err != nil {
		return nil, err
	}
	var out []*policyv1.PodDisruptionBudget
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		pdb := obj.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() && pdb.Spec.Selector == nil {
			continue
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, pdb)
		}
	}
	return out, nil
}

func isPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
