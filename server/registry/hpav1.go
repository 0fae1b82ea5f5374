package registry

import (
	"encoding/json"
	"maps"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The annotations autoscaling/v1 keeps what it has no fields for in, as
// Kubernetes names them: the metrics other than a CPU utilization target,
// the scaling behavior, the current metrics and the conditions. Metrics
// are written in autoscaling/v1's own (older) metric types.
const (
	hpaMetricsAnnotation        = "autoscaling.alpha.kubernetes.io/metrics"
	hpaBehaviorAnnotation       = "autoscaling.alpha.kubernetes.io/behavior"
	hpaCurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	hpaConditionsAnnotation     = "autoscaling.alpha.kubernetes.io/conditions"
)

var hpaAnnotations = []string{hpaMetricsAnnotation, hpaBehaviorAnnotation, hpaCurrentMetricsAnnotation, hpaConditionsAnnotation,
	"autoscaling.alpha.kubernetes.io/scale-down-tolerance", "autoscaling.alpha.kubernetes.io/scale-up-tolerance"}

// hpaV1Resource serves the stored autoscaling/v2 objects in
// autoscaling/v1: one store, two versions.
var hpaV1Resource = newHPAV1Resource()

func newHPAV1Resource() *Resource {
	r := &Resource{
		Name:       hpaResource.Name,
		Singular:   hpaResource.Singular,
		Kind:       hpaResource.Kind,
		Group:      GroupAutoscaling,
		ShortNames: hpaResource.ShortNames,
		Categories: hpaResource.Categories,
		Namespaced: true,
		HasStatus:  true,
		View: &View{
			Of:       hpaResource,
			ToStored: func(obj runtime.Object) runtime.Object { return HPAToV2(obj.(*autoscalingv1.HorizontalPodAutoscaler)) },
			FromStored: func(obj runtime.Object) runtime.Object {
				return HPAFromV2(obj.(*autoscalingv2.HorizontalPodAutoscaler))
			},
		},

		New:     func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} },
		NewList: func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscalerList{} },

		PrepareForCreate: mutate(func(h *autoscalingv1.HorizontalPodAutoscaler) {
			h.Status = autoscalingv1.HorizontalPodAutoscalerStatus{}
			if h.Spec.MinReplicas == nil {
				h.Spec.MinReplicas = ptrTo(int32(1))
			}
		}),
		// The parts of spec and status v1 keeps in annotations follow
		// their part: an update keeps old's status ones, a status update
		// old's spec ones.
		PrepareForUpdate: mutatePair(func(h, old *autoscalingv1.HorizontalPodAutoscaler) {
			h.Status = old.Status
			keepAnnotations(&h.ObjectMeta, &old.ObjectMeta, hpaCurrentMetricsAnnotation, hpaConditionsAnnotation)
			if h.Spec.MinReplicas == nil {
				h.Spec.MinReplicas = ptrTo(int32(1))
			}
			nextGeneration(&h.ObjectMeta, &old.ObjectMeta, h.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(h, old *autoscalingv1.HorizontalPodAutoscaler) {
			h.Spec = old.Spec
			keepAnnotations(&h.ObjectMeta, &old.ObjectMeta, hpaMetricsAnnotation, hpaBehaviorAnnotation)
			h.Generation = old.Generation
		}),

		// Kubernetes validates every version in its internal form, which
		// is v2's: so do these, with v2's field paths.
		ValidateCreate: check(func(h *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			return hpaResource.ValidateCreate(HPAToV2(h))
		}),
		ValidateUpdate: checkPair(func(h, old *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			return hpaResource.ValidateUpdate(HPAToV2(h), HPAToV2(old))
		}),
		ValidateStatusUpdate: checkPair(func(h, old *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			return hpaResource.ValidateStatusUpdate(HPAToV2(h), HPAToV2(old))
		}),

		FieldSet: selectable(func(h *autoscalingv1.HorizontalPodAutoscaler) fields.Set { return metaFields(&h.ObjectMeta, nil) }),
		Columns:  hpaColumns,
		Row: printable(func(h *autoscalingv1.HorizontalPodAutoscaler, now time.Time) []interface{} {
			return hpaRow(HPAToV2(h), now)
		}),
	}
	notScalable(r)
	return r
}

// HPAFromV2 converts a stored autoscaling/v2 HorizontalPodAutoscaler to
// autoscaling/v1: a CPU utilization target becomes
// targetCPUUtilizationPercentage, and what v1 has no field for goes in
// annotations HPAToV2 reads back. h is not modified.
func HPAFromV2(h *autoscalingv2.HorizontalPodAutoscaler) *autoscalingv1.HorizontalPodAutoscaler {
	h = h.DeepCopy()
	out := &autoscalingv1.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{Kind: "HorizontalPodAutoscaler", APIVersion: GroupAutoscaling + "/v1"},
		ObjectMeta: h.ObjectMeta,
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference(h.Spec.ScaleTargetRef),
			MinReplicas:    h.Spec.MinReplicas,
			MaxReplicas:    h.Spec.MaxReplicas,
		},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{
			ObservedGeneration: h.Status.ObservedGeneration,
			LastScaleTime:      h.Status.LastScaleTime,
			CurrentReplicas:    h.Status.CurrentReplicas,
			DesiredReplicas:    h.Status.DesiredReplicas,
		},
	}
	ann := withoutHPAAnnotations(out.Annotations)
	var others []autoscalingv1.MetricSpec
	for _, m := range h.Spec.Metrics {
		if out.Spec.TargetCPUUtilizationPercentage == nil && isCPUUtilization(m) {
			out.Spec.TargetCPUUtilizationPercentage = ptrTo(*m.Resource.Target.AverageUtilization)
			continue
		}
		others = append(others, metricSpecToV1(m))
	}
	var current []autoscalingv1.MetricStatus
	for _, m := range h.Status.CurrentMetrics {
		if r := m.Resource; m.Type == autoscalingv2.ResourceMetricSourceType && r != nil && r.Name == corev1.ResourceCPU && r.Current.AverageUtilization != nil {
			out.Status.CurrentCPUUtilizationPercentage = ptrTo(*r.Current.AverageUtilization)
		}
		current = append(current, metricStatusToV1(m))
	}
	setJSONAnnotation(&ann, hpaMetricsAnnotation, others, len(others) > 0)
	setJSONAnnotation(&ann, hpaBehaviorAnnotation, h.Spec.Behavior, h.Spec.Behavior != nil)
	setJSONAnnotation(&ann, hpaCurrentMetricsAnnotation, current, len(current) > 0)
	setJSONAnnotation(&ann, hpaConditionsAnnotation, h.Status.Conditions, len(h.Status.Conditions) > 0)
	out.Annotations = ann
	return out
}

// HPAToV2 converts an autoscaling/v1 HorizontalPodAutoscaler to the v2
// form it is stored in, the inverse of HPAFromV2; without a target, v1
// means a CPU utilization of 80%. h is not modified.
func HPAToV2(h *autoscalingv1.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	h = h.DeepCopy()
	out := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{Kind: "HorizontalPodAutoscaler", APIVersion: GroupAutoscaling + "/v2"},
		ObjectMeta: h.ObjectMeta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference(h.Spec.ScaleTargetRef),
			MinReplicas:    h.Spec.MinReplicas,
			MaxReplicas:    h.Spec.MaxReplicas,
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{
			ObservedGeneration: h.Status.ObservedGeneration,
			LastScaleTime:      h.Status.LastScaleTime,
			CurrentReplicas:    h.Status.CurrentReplicas,
			DesiredReplicas:    h.Status.DesiredReplicas,
		},
	}
	ann := h.Annotations
	var others []autoscalingv1.MetricSpec
	if readJSONAnnotation(ann, hpaMetricsAnnotation, &others) {
		for _, m := range others {
			out.Spec.Metrics = append(out.Spec.Metrics, metricSpecToV2(m))
		}
	}
	if p := h.Spec.TargetCPUUtilizationPercentage; p != nil {
		out.Spec.Metrics = append(out.Spec.Metrics, cpuUtilizationMetric(*p))
	}
	if len(out.Spec.Metrics) == 0 {
		out.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationMetric(defaultCPUUtilization)}
	}
	var behavior autoscalingv2.HorizontalPodAutoscalerBehavior
	if readJSONAnnotation(ann, hpaBehaviorAnnotation, &behavior) && (behavior.ScaleUp != nil || behavior.ScaleDown != nil) {
		out.Spec.Behavior = &behavior
	}
	var current []autoscalingv1.MetricStatus
	if readJSONAnnotation(ann, hpaCurrentMetricsAnnotation, &current) {
		for _, m := range current {
			out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, metricStatusToV2(m))
		}
	} else if p := h.Status.CurrentCPUUtilizationPercentage; p != nil {
		out.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptrTo(*p)},
			},
		}}
	}
	var conditions []autoscalingv2.HorizontalPodAutoscalerCondition
	if readJSONAnnotation(ann, hpaConditionsAnnotation, &conditions) {
		out.Status.Conditions = conditions
	}
	out.Annotations = withoutHPAAnnotations(ann)
	return out
}

// keepAnnotations sets the annotations keys of m to those of old, removing
// those old lacks.
func keepAnnotations(m, old *metav1.ObjectMeta, keys ...string) {
	for _, k := range keys {
		v, ok := old.Annotations[k]
		switch {
		case ok && m.Annotations == nil:
			m.Annotations = map[string]string{k: v}
		case ok:
			m.Annotations[k] = v
		default:
			delete(m.Annotations, k)
		}
	}
}

func isCPUUtilization(m autoscalingv2.MetricSpec) bool {
	r := m.Resource
	return m.Type == autoscalingv2.ResourceMetricSourceType && r != nil && r.Name == corev1.ResourceCPU &&
		r.Target.AverageUtilization != nil
}

// withoutHPAAnnotations is a copy of ann without the conversion
// annotations, nil if nothing is left.
func withoutHPAAnnotations(ann map[string]string) map[string]string {
	out := maps.Clone(ann)
	for _, k := range hpaAnnotations {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func setJSONAnnotation(ann *map[string]string, key string, v any, set bool) {
	if !set {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		return // the API types always marshal
	}
	if *ann == nil {
		*ann = map[string]string{}
	}
	(*ann)[key] = string(data)
}

// readJSONAnnotation decodes ann[key] into v; an annotation that does not
// decode is ignored, as Kubernetes ignores it.
func readJSONAnnotation(ann map[string]string, key string, v any) bool {
	s, ok := ann[key]
	return ok && json.Unmarshal([]byte(s), v) == nil
}

func metricSpecToV1(m autoscalingv2.MetricSpec) autoscalingv1.MetricSpec {
	out := autoscalingv1.MetricSpec{Type: autoscalingv1.MetricSourceType(m.Type)}
	switch {
	case m.Object != nil:
		out.Object = &autoscalingv1.ObjectMetricSource{
			Target:     autoscalingv1.CrossVersionObjectReference(m.Object.DescribedObject),
			MetricName: m.Object.Metric.Name, Selector: m.Object.Metric.Selector,
			TargetValue: valueOr(m.Object.Target.Value), AverageValue: m.Object.Target.AverageValue,
		}
	case m.Pods != nil:
		out.Pods = &autoscalingv1.PodsMetricSource{
			MetricName: m.Pods.Metric.Name, Selector: m.Pods.Metric.Selector,
			TargetAverageValue: valueOr(m.Pods.Target.AverageValue),
		}
	case m.Resource != nil:
		out.Resource = &autoscalingv1.ResourceMetricSource{
			Name:                     m.Resource.Name,
			TargetAverageUtilization: m.Resource.Target.AverageUtilization, TargetAverageValue: m.Resource.Target.AverageValue,
		}
	case m.ContainerResource != nil:
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricSource{
			Name: m.ContainerResource.Name, Container: m.ContainerResource.Container,
			TargetAverageUtilization: m.ContainerResource.Target.AverageUtilization,
			TargetAverageValue:       m.ContainerResource.Target.AverageValue,
		}
	case m.External != nil:
		out.External = &autoscalingv1.ExternalMetricSource{
			MetricName: m.External.Metric.Name, MetricSelector: m.External.Metric.Selector,
			TargetValue: m.External.Target.Value, TargetAverageValue: m.External.Target.AverageValue,
		}
	}
	return out
}

func metricSpecToV2(m autoscalingv1.MetricSpec) autoscalingv2.MetricSpec {
	out := autoscalingv2.MetricSpec{Type: autoscalingv2.MetricSourceType(m.Type)}
	switch {
	case m.Object != nil:
		// Without an average, the v1 target value is the target.
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptrTo(m.Object.TargetValue)}
		if m.Object.AverageValue != nil {
			t = autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: m.Object.AverageValue}
			if !m.Object.TargetValue.IsZero() {
				t.Value = ptrTo(m.Object.TargetValue)
			}
		}
		out.Object = &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference(m.Object.Target),
			Metric:          autoscalingv2.MetricIdentifier{Name: m.Object.MetricName, Selector: m.Object.Selector},
			Target:          t,
		}
	case m.Pods != nil:
		out.Pods = &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: m.Pods.MetricName, Selector: m.Pods.Selector},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptrTo(m.Pods.TargetAverageValue)},
		}
	case m.Resource != nil:
		out.Resource = &autoscalingv2.ResourceMetricSource{
			Name: m.Resource.Name, Target: resourceTarget(m.Resource.TargetAverageUtilization, m.Resource.TargetAverageValue),
		}
	case m.ContainerResource != nil:
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricSource{
			Name: m.ContainerResource.Name, Container: m.ContainerResource.Container,
			Target: resourceTarget(m.ContainerResource.TargetAverageUtilization, m.ContainerResource.TargetAverageValue),
		}
	case m.External != nil:
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: m.External.TargetValue, AverageValue: m.External.TargetAverageValue}
		if m.External.TargetValue == nil {
			t.Type = autoscalingv2.AverageValueMetricType
		}
		out.External = &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: m.External.MetricName, Selector: m.External.MetricSelector},
			Target: t,
		}
	}
	return out
}

// resourceTarget is the v2 target of a v1 resource metric: a utilization
// when one is set, else an average value.
func resourceTarget(utilization *int32, average *resource.Quantity) autoscalingv2.MetricTarget {
	t := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageUtilization: utilization, AverageValue: average}
	if utilization != nil {
		t.Type = autoscalingv2.UtilizationMetricType
	}
	return t
}

func metricStatusToV1(m autoscalingv2.MetricStatus) autoscalingv1.MetricStatus {
	out := autoscalingv1.MetricStatus{Type: autoscalingv1.MetricSourceType(m.Type)}
	switch {
	case m.Object != nil:
		out.Object = &autoscalingv1.ObjectMetricStatus{
			Target:     autoscalingv1.CrossVersionObjectReference(m.Object.DescribedObject),
			MetricName: m.Object.Metric.Name, Selector: m.Object.Metric.Selector,
			CurrentValue: valueOr(m.Object.Current.Value), AverageValue: m.Object.Current.AverageValue,
		}
	case m.Pods != nil:
		out.Pods = &autoscalingv1.PodsMetricStatus{
			MetricName: m.Pods.Metric.Name, Selector: m.Pods.Metric.Selector,
			CurrentAverageValue: valueOr(m.Pods.Current.AverageValue),
		}
	case m.Resource != nil:
		out.Resource = &autoscalingv1.ResourceMetricStatus{
			Name:                      m.Resource.Name,
			CurrentAverageUtilization: m.Resource.Current.AverageUtilization, CurrentAverageValue: valueOr(m.Resource.Current.AverageValue),
		}
	case m.ContainerResource != nil:
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricStatus{
			Name: m.ContainerResource.Name, Container: m.ContainerResource.Container,
			CurrentAverageUtilization: m.ContainerResource.Current.AverageUtilization,
			CurrentAverageValue:       valueOr(m.ContainerResource.Current.AverageValue),
		}
	case m.External != nil:
		out.External = &autoscalingv1.ExternalMetricStatus{
			MetricName: m.External.Metric.Name, MetricSelector: m.External.Metric.Selector,
			CurrentValue: valueOr(m.External.Current.Value), CurrentAverageValue: m.External.Current.AverageValue,
		}
	}
	return out
}

func metricStatusToV2(m autoscalingv1.MetricStatus) autoscalingv2.MetricStatus {
	out := autoscalingv2.MetricStatus{Type: autoscalingv2.MetricSourceType(m.Type)}
	switch {
	case m.Object != nil:
		out.Object = &autoscalingv2.ObjectMetricStatus{
			DescribedObject: autoscalingv2.CrossVersionObjectReference(m.Object.Target),
			Metric:          autoscalingv2.MetricIdentifier{Name: m.Object.MetricName, Selector: m.Object.Selector},
			Current:         autoscalingv2.MetricValueStatus{Value: ptrTo(m.Object.CurrentValue), AverageValue: m.Object.AverageValue},
		}
	case m.Pods != nil:
		out.Pods = &autoscalingv2.PodsMetricStatus{
			Metric:  autoscalingv2.MetricIdentifier{Name: m.Pods.MetricName, Selector: m.Pods.Selector},
			Current: autoscalingv2.MetricValueStatus{AverageValue: ptrTo(m.Pods.CurrentAverageValue)},
		}
	case m.Resource != nil:
		out.Resource = &autoscalingv2.ResourceMetricStatus{
			Name: m.Resource.Name,
			Current: autoscalingv2.MetricValueStatus{
				AverageUtilization: m.Resource.CurrentAverageUtilization, AverageValue: ptrTo(m.Resource.CurrentAverageValue),
			},
		}
	case m.ContainerResource != nil:
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{
			Name: m.ContainerResource.Name, Container: m.ContainerResource.Container,
			Current: autoscalingv2.MetricValueStatus{
				AverageUtilization: m.ContainerResource.CurrentAverageUtilization, AverageValue: ptrTo(m.ContainerResource.CurrentAverageValue),
			},
		}
	case m.External != nil:
		out.External = &autoscalingv2.ExternalMetricStatus{
			Metric:  autoscalingv2.MetricIdentifier{Name: m.External.MetricName, Selector: m.External.MetricSelector},
			Current: autoscalingv2.MetricValueStatus{Value: ptrTo(m.External.CurrentValue), AverageValue: m.External.CurrentAverageValue},
		}
	}
	return out
}

// valueOr is *q, or zero for nil.
func valueOr(q *resource.Quantity) resource.Quantity {
	if q == nil {
		return resource.Quantity{}
	}
	return *q
}
