package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validHPA() *autoscalingv2.HorizontalPodAutoscaler {
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    4,
		},
	}
	hpaResource.PrepareForCreate(h)
	return h
}

func TestHPADefaults(t *testing.T) {
	h := validHPA()
	if *h.Spec.MinReplicas != 1 || len(h.Spec.Metrics) != 1 || !isCPUUtilization(h.Spec.Metrics[0]) ||
		*h.Spec.Metrics[0].Resource.Target.AverageUtilization != 80 {
		t.Errorf("defaults = %+v, want minReplicas 1 and CPU at 80%%", h.Spec)
	}
	h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	hpaResource.PrepareForCreate(h)
	up, down := h.Spec.Behavior.ScaleUp, h.Spec.Behavior.ScaleDown
	if up == nil || down == nil || *up.StabilizationWindowSeconds != 0 || len(up.Policies) != 2 ||
		*down.StabilizationWindowSeconds != 300 || *down.SelectPolicy != autoscalingv2.MaxChangePolicySelect {
		t.Errorf("behavior defaults = %+v", h.Spec.Behavior)
	}
}

func TestValidateHPA(t *testing.T) {
	type hpa = autoscalingv2.HorizontalPodAutoscaler
	metric := func(m autoscalingv2.MetricSpec) func(*hpa) {
		return func(h *hpa) { h.Spec.Metrics = []autoscalingv2.MetricSpec{m} }
	}
	q := func(s string) *resource.Quantity { return ptrTo(resource.MustParse(s)) }
	runValidation(t, hpaResource, validHPA, []validationCase[*hpa]{
		{name: "valid"},
		{"no target kind", func(h *hpa) { h.Spec.ScaleTargetRef.Kind = "" }, []string{errKey(required, "spec.scaleTargetRef.kind")}},
		{"no target name", func(h *hpa) { h.Spec.ScaleTargetRef.Name = "" }, []string{errKey(required, "spec.scaleTargetRef.name")}},
		{"bad target name", func(h *hpa) { h.Spec.ScaleTargetRef.Name = "a/b" }, []string{errKey(invalid, "spec.scaleTargetRef.name")}},
		{"zero min", func(h *hpa) { h.Spec.MinReplicas = ptrTo(int32(0)) }, []string{errKey(invalid, "spec.minReplicas")}},
		{"zero max", func(h *hpa) { h.Spec.MaxReplicas = 0 }, []string{errKey(invalid, "spec.maxReplicas")}},
		{"max below min", func(h *hpa) { h.Spec.MinReplicas = ptrTo(int32(5)) }, []string{errKey(invalid, "spec.maxReplicas")}},
		{"no metric type", metric(autoscalingv2.MetricSpec{}), []string{errKey(required, "spec.metrics[0].type")}},
		{"bad metric type", metric(autoscalingv2.MetricSpec{Type: "Magic"}), []string{errKey(notSupported, "spec.metrics[0].type")}},
		{"source missing", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType}),
			[]string{errKey(required, "spec.metrics[0].pods")}},
		{"other source set", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: cpuUtilizationMetric(50).Resource,
			Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "x"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q("1")}}}),
			[]string{errKey(forbidden, "spec.metrics[0].pods")}},
		{"utilization without value", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType}}}),
			[]string{errKey(required, "spec.metrics[0].resource.target.averageUtilization")}},
		{"zero utilization", metric(cpuUtilizationMetric(0)), []string{errKey(invalid, "spec.metrics[0].resource.target.averageUtilization")}},
		{"resource value target", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: q("1Gi")}}}),
			[]string{errKey(required, "spec.metrics[0].resource.target.averageUtilization"), errKey(forbidden, "spec.metrics[0].resource.target.value")}},
		{"negative average value", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType,
			Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q("-1")}}}),
			[]string{errKey(invalid, "spec.metrics[0].pods.target.averageValue")}},
		{"object without name", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType,
			Object: &autoscalingv2.ObjectMetricSource{DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: "Ingress"},
				Metric: autoscalingv2.MetricIdentifier{Name: "hits"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: q("10")}}}),
			[]string{errKey(required, "spec.metrics[0].object.describedObject.name")}},
		{"container without name", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType,
			ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: corev1.ResourceCPU,
				Target: cpuUtilizationMetric(50).Resource.Target}}),
			[]string{errKey(required, "spec.metrics[0].containerResource.container")}},
		{"external without metric", metric(autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType,
			External: &autoscalingv2.ExternalMetricSource{Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: q("3")}}}),
			[]string{errKey(required, "spec.metrics[0].external.metric.name")}},
		{"bad behavior", func(h *hpa) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptrTo(int32(4000)),
				Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: "Nodes", Value: 0, PeriodSeconds: 2000}},
			}}
		}, []string{
			errKey(invalid, "spec.behavior.scaleDown.stabilizationWindowSeconds"),
			errKey(notSupported, "spec.behavior.scaleDown.policies[0].type"),
			errKey(invalid, "spec.behavior.scaleDown.policies[0].value"),
			errKey(invalid, "spec.behavior.scaleDown.policies[0].periodSeconds"),
		}},
	})
	runUpdate(t, hpaResource, true, validHPA, []validationCase[*hpa]{
		{"negative replicas", func(h *hpa) { h.Status.CurrentReplicas = -1 }, []string{errKey(invalid, "status.currentReplicas")}},
		{"condition without status", func(h *hpa) {
			h.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingActive}}
		}, []string{errKey(required, "status.conditions[0].status")}},
	})
}

// TestValidateHPAV1 checks that v1 objects are validated in their v2
// form, with v2's paths, as Kubernetes validates its internal form.
func TestValidateHPAV1(t *testing.T) {
	type hpa = autoscalingv1.HorizontalPodAutoscaler
	base := func() *hpa {
		h := &hpa{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}, MaxReplicas: 3,
			},
		}
		hpaV1Resource.PrepareForCreate(h)
		return h
	}
	runValidation(t, hpaV1Resource, base, []validationCase[*hpa]{
		{name: "valid"},
		{"zero cpu", func(h *hpa) { h.Spec.TargetCPUUtilizationPercentage = ptrTo(int32(0)) },
			[]string{errKey(invalid, "spec.metrics[0].resource.target.averageUtilization")}},
		{"no kind", func(h *hpa) { h.Spec.ScaleTargetRef.Kind = "" }, []string{errKey(required, "spec.scaleTargetRef.kind")}},
		{"max below min", func(h *hpa) { h.Spec.MinReplicas = ptrTo(int32(4)) }, []string{errKey(invalid, "spec.maxReplicas")}},
	})
}

// TestHPAConversion converts between the versions both ways and back.
func TestHPAConversion(t *testing.T) {
	v2 := validHPA()
	v2.Annotations = map[string]string{"team": "a"}
	v2.Spec.Metrics = []autoscalingv2.MetricSpec{
		{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "queue", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"q": "jobs"}}},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptrTo(resource.MustParse("30"))},
		}},
		{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: "Ingress", Name: "main", APIVersion: "networking.k8s.io/v1"},
			Metric:          autoscalingv2.MetricIdentifier{Name: "hits"},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptrTo(resource.MustParse("2k"))},
		}},
		{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
			Name: corev1.ResourceMemory, Container: "app",
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptrTo(resource.MustParse("100Mi"))},
		}},
		cpuUtilizationMetric(70),
	}
	v2.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	hpaResource.PrepareForCreate(v2)
	v2.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptrTo(int64(3)), CurrentReplicas: 2, DesiredReplicas: 3,
		CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptrTo(int32(55)), AverageValue: ptrTo(resource.MustParse("200m"))},
		}}},
		Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, Reason: "Ready"}},
	}
	orig := v2.DeepCopy()

	v1 := HPAFromV2(v2)
	if diff := cmp.Diff(orig, v2); diff != "" {
		t.Errorf("HPAFromV2 modified its argument (-want +got):\n%s", diff)
	}
	if p := v1.Spec.TargetCPUUtilizationPercentage; p == nil || *p != 70 {
		t.Errorf("targetCPUUtilizationPercentage = %v, want 70", p)
	}
	if p := v1.Status.CurrentCPUUtilizationPercentage; p == nil || *p != 55 {
		t.Errorf("currentCPUUtilizationPercentage = %v, want 55", p)
	}
	for _, k := range []string{hpaMetricsAnnotation, hpaBehaviorAnnotation, hpaCurrentMetricsAnnotation, hpaConditionsAnnotation, "team"} {
		if _, ok := v1.Annotations[k]; !ok {
			t.Errorf("v1 annotations %v lack %s", v1.Annotations, k)
		}
	}

	back := HPAToV2(v1)
	if diff := cmp.Diff(orig, back, quantityEqual, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "TypeMeta" }, cmp.Ignore())); diff != "" {
		t.Errorf("v2 → v1 → v2 (-want +got):\n%s", diff)
	}
}

// TestHPAV1KeepsOtherPart checks that a v1 write of one part (spec or
// status) keeps what v1 holds of the other in annotations, even when the
// client drops them.
func TestHPAV1KeepsOtherPart(t *testing.T) {
	v2 := validHPA()
	v2.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	hpaResource.PrepareForCreate(v2)
	v2.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue}}
	old := HPAFromV2(v2)

	upd := old.DeepCopy()
	upd.Annotations = nil
	upd.Spec.MaxReplicas = 9
	hpaV1Resource.PrepareForUpdate(upd, old)
	got := HPAToV2(upd)
	if len(got.Status.Conditions) != 1 || got.Spec.Behavior != nil || got.Spec.MaxReplicas != 9 {
		t.Errorf("after a v1 update without annotations: conditions %v, behavior %v; want the conditions kept, the behavior dropped",
			got.Status.Conditions, got.Spec.Behavior)
	}

	st := old.DeepCopy()
	st.Annotations = nil
	st.Status.DesiredReplicas = 2
	hpaV1Resource.PrepareForStatusUpdate(st, old)
	got = HPAToV2(st)
	if got.Spec.Behavior == nil || len(got.Status.Conditions) != 0 || got.Status.DesiredReplicas != 2 {
		t.Errorf("after a v1 status update without annotations: behavior %v, conditions %v; want the behavior kept, the conditions dropped",
			got.Spec.Behavior, got.Status.Conditions)
	}
}
