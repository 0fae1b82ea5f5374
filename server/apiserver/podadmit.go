package apiserver

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// admitPodRuntimeClass applies a new pod's RuntimeClass as Kubernetes'
// RuntimeClass admission does: the class must exist, its overhead becomes
// the pod's, and its scheduling constraints join the pod's. A pod that
// names no class may not carry an overhead of its own.
func (s *Server) admitPodRuntimeClass(ctx context.Context, pod *corev1.Pod) error {
	forbid := func(format string, args ...any) error {
		return apierrors.NewForbidden(schemaGR("pods"), pod.Name, fmt.Errorf("pod rejected: "+format, args...))
	}
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName == "" {
		if pod.Spec.Overhead != nil {
			return forbid("Pod Overhead set without corresponding RuntimeClass defined Overhead")
		}
		return nil
	}
	name := *pod.Spec.RuntimeClassName
	obj, err := s.readObject(ctx, "runtimeclasses", "", name)
	if errors.Is(err, store.ErrNotFound) {
		return forbid("RuntimeClass %q not found", name)
	}
	if err != nil {
		return err
	}
	rc := obj.(*nodev1.RuntimeClass)
	switch {
	case rc.Overhead != nil && pod.Spec.Overhead != nil && !apiequality.Semantic.DeepEqual(rc.Overhead.PodFixed, pod.Spec.Overhead):
		return forbid("Pod's Overhead doesn't match RuntimeClass's defined Overhead")
	case rc.Overhead != nil:
		pod.Spec.Overhead = rc.Overhead.PodFixed.DeepCopy()
	case pod.Spec.Overhead != nil:
		return forbid("Pod Overhead set without corresponding RuntimeClass defined Overhead")
	}
	if rc.Scheduling == nil {
		return nil
	}
	for k, v := range rc.Scheduling.NodeSelector {
		if have, ok := pod.Spec.NodeSelector[k]; ok && have != v {
			return forbid("conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s", k, v, k, have)
		}
		if pod.Spec.NodeSelector == nil {
			pod.Spec.NodeSelector = map[string]string{}
		}
		pod.Spec.NodeSelector[k] = v
	}
	for _, t := range rc.Scheduling.Tolerations {
		if !hasToleration(pod.Spec.Tolerations, t) {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
		}
	}
	return nil
}

func hasToleration(ts []corev1.Toleration, t corev1.Toleration) bool {
	for _, have := range ts {
		if apiequality.Semantic.DeepEqual(have, t) {
			return true
		}
	}
	return false
}

// admitPodPriority resolves a new pod's priority as Kubernetes' Priority
// admission does: from the PriorityClass it names (which must exist), or
// else from the cluster's global default class, or 0. A pod may not ask
// for a priority or preemption policy other than its class gives.
func (s *Server) admitPodPriority(ctx context.Context, pod *corev1.Pod) error {
	forbid := func(format string, args ...any) error {
		return apierrors.NewForbidden(schemaGR("pods"), pod.Name, fmt.Errorf(format, args...))
	}
	var value int32
	policy := new(corev1.PreemptLowerPriority)
	if name := pod.Spec.PriorityClassName; name == "" {
		def, err := s.defaultPriorityClass(ctx)
		if err != nil {
			return err
		}
		if def != nil {
			pod.Spec.PriorityClassName = def.Name
			value, policy = def.Value, def.PreemptionPolicy
		}
	} else {
		obj, err := s.readObject(ctx, "priorityclasses", "", name)
		if errors.Is(err, store.ErrNotFound) {
			return forbid("no PriorityClass with name %v was found", name)
		}
		if err != nil {
			return err
		}
		pc := obj.(*schedulingv1.PriorityClass)
		value, policy = pc.Value, pc.PreemptionPolicy
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != value {
		return forbid("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name",
			*pod.Spec.Priority, value)
	}
	pod.Spec.Priority = &value
	if policy != nil {
		if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != *policy {
			return forbid("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name",
				*pod.Spec.PreemptionPolicy, *policy)
		}
		pod.Spec.PreemptionPolicy = new(*policy)
	}
	return nil
}

// defaultPriorityClass returns the class marked globalDefault (the one
// with the lowest value if several are), nil when there is none.
func (s *Server) defaultPriorityClass(ctx context.Context) (*schedulingv1.PriorityClass, error) {
	res, _ := registry.Lookup("priorityclasses")
	kvs, _, err := s.store.List(ctx, storagePrefix(res, ""), 0)
	if err != nil {
		return nil, err
	}
	var def *schedulingv1.PriorityClass
	for _, kv := range kvs {
		obj, err := s.decodeShared(res, kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		if pc := obj.(*schedulingv1.PriorityClass); pc.GlobalDefault && (def == nil || pc.Value < def.Value) {
			def = pc
		}
	}
	return def, nil
}

// EnsurePriorityClasses creates the system priority classes.
func (s *Server) EnsurePriorityClasses(ctx context.Context) error {
	res, _ := registry.Lookup("priorityclasses")
	for _, pc := range registry.SystemPriorityClasses() {
		setTypeMeta(pc, res)
		if _, _, err := s.createObject(ctx, res, pc, false); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("priority class %s: %w", pc.Name, err)
		}
	}
	return nil
}
