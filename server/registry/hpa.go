package registry

import (
	"fmt"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupAutoscaling is the API group of HorizontalPodAutoscaler, served in
// v2 (stored, preferred) and v1 (a view of v2). minik runs no autoscaler:
// it keeps the objects, with Kubernetes' defaults and validation, for a
// controller that acts on them.
const GroupAutoscaling = "autoscaling"

// Defaults of a HorizontalPodAutoscaler, as in Kubernetes.
const (
	defaultCPUUtilization       = 80
	defaultScaleDownWindow      = 300 // seconds
	maxStabilizationWindow      = 3600
	maxScalingPolicyPeriod      = 1800
	defaultScalingPolicyPeriod  = 15
	defaultScaleUpPodsIncrement = 4
	defaultScalePercent         = 100
)

var hpaResource = newHPAResource()

func newHPAResource() *Resource {
	r := &Resource{
		Name:       "horizontalpodautoscalers",
		Singular:   "horizontalpodautoscaler",
		Kind:       "HorizontalPodAutoscaler",
		Group:      GroupAutoscaling,
		Version:    "v2",
		ShortNames: []string{"hpa"},
		Categories: []string{"all"},
		Namespaced: true,
		HasStatus:  true,

		New:     func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		NewList: func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscalerList{} },

		PrepareForCreate: mutate(func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
			defaultHPA(h)
		}),
		PrepareForUpdate: mutatePair(func(h, old *autoscalingv2.HorizontalPodAutoscaler) {
			h.Status = old.Status
			defaultHPA(h)
			nextGeneration(&h.ObjectMeta, &old.ObjectMeta, h.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(h, old *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec = old.Spec
			h.Generation = old.Generation
		}),

		ValidateCreate: check(validateHPA),
		ValidateUpdate: checkPair(func(h, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			return append(validateMetaUpdate(&h.ObjectMeta, &old.ObjectMeta), validateHPA(h)...)
		}),
		ValidateStatusUpdate: checkPair(func(h, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			errs := validateMetaUpdate(&h.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateHPAStatus(&h.Status)...)
		}),

		FieldSet: selectable(func(h *autoscalingv2.HorizontalPodAutoscaler) fields.Set { return metaFields(&h.ObjectMeta, nil) }),
		Columns:  hpaColumns,
		Row:      printable(hpaRow),
	}
	notScalable(r)
	return r
}

var hpaColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Reference", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"], false),
	column("Targets", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"], false),
	column("MinPods", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"], false),
	column("MaxPods", "integer", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"], false),
	column("Replicas", "integer", autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"], false),
	ageColumn(),
}

func hpaRow(h *autoscalingv2.HorizontalPodAutoscaler, now time.Time) []interface{} {
	ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
	minPods := unknown
	if h.Spec.MinReplicas != nil {
		minPods = fmt.Sprint(*h.Spec.MinReplicas)
	}
	return []interface{}{h.Name, ref, hpaTargets(h), minPods, int64(h.Spec.MaxReplicas),
		int64(h.Status.CurrentReplicas), since(h.CreationTimestamp.Time, now)}
}

// hpaTargets summarizes the metrics' targets as kubectl does: "cpu:
// <unknown>/80%" with the current value unknown, minik measuring none.
func hpaTargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if len(h.Spec.Metrics) == 0 {
		return none
	}
	var parts []string
	for _, m := range h.Spec.Metrics {
		name, target := string(m.Type), autoscalingv2.MetricTarget{}
		switch {
		case m.Resource != nil:
			name, target = string(m.Resource.Name), m.Resource.Target
		case m.ContainerResource != nil:
			name, target = string(m.ContainerResource.Name), m.ContainerResource.Target
		case m.Pods != nil:
			name, target = m.Pods.Metric.Name, m.Pods.Target
		case m.Object != nil:
			name, target = m.Object.Metric.Name, m.Object.Target
		case m.External != nil:
			name, target = m.External.Metric.Name, m.External.Target
		}
		parts = append(parts, name+": "+unknown+"/"+targetString(target))
	}
	return strings.Join(parts, ", ")
}

func targetString(t autoscalingv2.MetricTarget) string {
	switch {
	case t.AverageUtilization != nil:
		return fmt.Sprintf("%d%%", *t.AverageUtilization)
	case t.AverageValue != nil:
		return t.AverageValue.String() + " (avg)"
	case t.Value != nil:
		return t.Value.String()
	}
	return unknown
}

// defaultHPA applies Kubernetes' defaults: one replica at least, a CPU
// utilization target of 80% when no metric is given, and the default
// scaling rules where a behavior leaves them out.
func defaultHPA(h *autoscalingv2.HorizontalPodAutoscaler) {
	if h.Spec.MinReplicas == nil {
		h.Spec.MinReplicas = ptrTo(int32(1))
	}
	if len(h.Spec.Metrics) == 0 {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationMetric(defaultCPUUtilization)}
	}
	if b := h.Spec.Behavior; b != nil {
		b.ScaleUp = defaultScalingRules(b.ScaleUp, 0,
			autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: defaultScaleUpPodsIncrement, PeriodSeconds: defaultScalingPolicyPeriod},
			autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: defaultScalePercent, PeriodSeconds: defaultScalingPolicyPeriod})
		b.ScaleDown = defaultScalingRules(b.ScaleDown, defaultScaleDownWindow,
			autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: defaultScalePercent, PeriodSeconds: defaultScalingPolicyPeriod})
	}
}

// defaultScalingRules fills what r leaves out with window, the Max
// select policy and policies.
func defaultScalingRules(r *autoscalingv2.HPAScalingRules, window int32, policies ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	if r == nil {
		r = &autoscalingv2.HPAScalingRules{}
	}
	if r.StabilizationWindowSeconds == nil {
		r.StabilizationWindowSeconds = ptrTo(window)
	}
	if r.SelectPolicy == nil {
		r.SelectPolicy = ptrTo(autoscalingv2.MaxChangePolicySelect)
	}
	if len(r.Policies) == 0 {
		r.Policies = policies
	}
	return r
}

// cpuUtilizationMetric is a Resource metric targeting an average CPU
// utilization of percent.
func cpuUtilizationMetric(percent int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptrTo(percent)},
		},
	}
}

// validateHPA checks a HorizontalPodAutoscaler as Kubernetes does.
func validateHPA(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	errs := validateMeta(&h.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	spec := field.NewPath("spec")
	errs = append(errs, validateScaleTargetRef(h.Spec.ScaleTargetRef, spec.Child("scaleTargetRef"))...)
	minReplicas := int32(1)
	if h.Spec.MinReplicas != nil {
		minReplicas = *h.Spec.MinReplicas
		if minReplicas < 1 {
			errs = append(errs, field.Invalid(spec.Child("minReplicas"), minReplicas, "must be greater than or equal to 1"))
		}
	}
	switch {
	case h.Spec.MaxReplicas < 1:
		errs = append(errs, field.Invalid(spec.Child("maxReplicas"), h.Spec.MaxReplicas, "must be greater than 0"))
	case h.Spec.MaxReplicas < minReplicas:
		errs = append(errs, field.Invalid(spec.Child("maxReplicas"), h.Spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	for i, m := range h.Spec.Metrics {
		errs = append(errs, validateMetricSpec(m, spec.Child("metrics").Index(i))...)
	}
	if b := h.Spec.Behavior; b != nil {
		p := spec.Child("behavior")
		errs = append(errs, validateScalingRules(b.ScaleUp, p.Child("scaleUp"))...)
		errs = append(errs, validateScalingRules(b.ScaleDown, p.Child("scaleDown"))...)
	}
	return errs
}

// validateScaleTargetRef requires a kind and a name, both usable in a path.
func validateScaleTargetRef(ref autoscalingv2.CrossVersionObjectReference, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, c := range []struct{ name, value string }{{"kind", ref.Kind}, {"name", ref.Name}} {
		if c.value == "" {
			errs = append(errs, field.Required(p.Child(c.name), ""))
			continue
		}
		for _, msg := range path.IsValidPathSegmentName(c.value) {
			errs = append(errs, field.Invalid(p.Child(c.name), c.value, msg))
		}
	}
	return errs
}

// validateMetricSpec requires the source named by the metric's type, and
// only it, to be set and well-formed.
func validateMetricSpec(m autoscalingv2.MetricSpec, p *field.Path) field.ErrorList {
	types := []autoscalingv2.MetricSourceType{autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType,
		autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType}
	errs := validateEnum(m.Type, p.Child("type"), types...)
	set := setMembers(&m)
	for _, name := range set {
		if !strings.EqualFold(name, string(m.Type)) {
			errs = append(errs, field.Forbidden(p.Child(name), "must populate information for the given metric source (only "+string(m.Type)+")"))
		}
	}
	switch m.Type {
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			return append(errs, field.Required(p.Child("object"), "must populate information for the given metric source"))
		}
		errs = append(errs, validateScaleTargetRef(autoscalingv2.CrossVersionObjectReference(m.Object.DescribedObject), p.Child("object", "describedObject"))...)
		errs = append(errs, validateMetricIdentifier(m.Object.Metric, p.Child("object", "metric"))...)
		errs = append(errs, validateMetricTarget(m.Object.Target, p.Child("object", "target"))...)
		if m.Object.Target.Value == nil && m.Object.Target.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("object", "target", "averageValue"), "must set either a target value or averageValue"))
		}
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil {
			return append(errs, field.Required(p.Child("pods"), "must populate information for the given metric source"))
		}
		errs = append(errs, validateMetricIdentifier(m.Pods.Metric, p.Child("pods", "metric"))...)
		errs = append(errs, validateMetricTarget(m.Pods.Target, p.Child("pods", "target"))...)
		if m.Pods.Target.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("pods", "target", "averageValue"), "must specify a positive target averageValue"))
		}
	case autoscalingv2.ResourceMetricSourceType:
		if m.Resource == nil {
			return append(errs, field.Required(p.Child("resource"), "must populate information for the given metric source"))
		}
		errs = append(errs, validateResourceMetric(m.Resource.Name, m.Resource.Target, p.Child("resource"))...)
	case autoscalingv2.ContainerResourceMetricSourceType:
		if m.ContainerResource == nil {
			return append(errs, field.Required(p.Child("containerResource"), "must populate information for the given metric source"))
		}
		cp := p.Child("containerResource")
		if m.ContainerResource.Container == "" {
			errs = append(errs, field.Required(cp.Child("container"), "must specify a container"))
		} else {
			errs = append(errs, validateDNSLabel(m.ContainerResource.Container, cp.Child("container"))...)
		}
		errs = append(errs, validateResourceMetric(m.ContainerResource.Name, m.ContainerResource.Target, cp)...)
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			return append(errs, field.Required(p.Child("external"), "must populate information for the given metric source"))
		}
		errs = append(errs, validateMetricIdentifier(m.External.Metric, p.Child("external", "metric"))...)
		errs = append(errs, validateMetricTarget(m.External.Target, p.Child("external", "target"))...)
		if m.External.Target.Value == nil && m.External.Target.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("external", "target", "averageValue"), "must set either a target value for metric or a per-pod target"))
		}
	}
	return errs
}

// validateResourceMetric checks the target of a (container) resource
// metric: a utilization or an average value, not both.
func validateResourceMetric(name corev1.ResourceName, t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must specify a resource name"))
	} else {
		errs = append(errs, validateResourceNameSyntax(string(name), p.Child("name"))...)
	}
	errs = append(errs, validateMetricTarget(t, p.Child("target"))...)
	tp := p.Child("target")
	switch {
	case t.AverageUtilization == nil && t.AverageValue == nil &&
		t.Type != autoscalingv2.UtilizationMetricType && t.Type != autoscalingv2.AverageValueMetricType: // else reported above
		errs = append(errs, field.Required(tp.Child("averageUtilization"), "must set either a target resource utilization or a target average resource value"))
	case t.AverageUtilization != nil && t.AverageValue != nil:
		errs = append(errs, field.Forbidden(tp.Child("averageValue"), "may not set both a target resource utilization and a target average resource value"))
	}
	if t.Value != nil {
		errs = append(errs, field.Forbidden(tp.Child("value"), "may not set a target value for a resource metric"))
	}
	return errs
}

func validateMetricIdentifier(id autoscalingv2.MetricIdentifier, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if id.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must specify a metric name"))
	} else {
		for _, msg := range path.IsValidPathSegmentName(id.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), id.Name, msg))
		}
	}
	if id.Selector != nil {
		errs = append(errs, metavalidation.ValidateLabelSelector(id.Selector, metavalidation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	}
	return errs
}

// validateMetricTarget checks a target's type against the value it sets
// and requires positive values.
func validateMetricTarget(t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	errs := validateEnum(t.Type, p.Child("type"),
		autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType)
	switch {
	case t.Type == autoscalingv2.UtilizationMetricType && t.AverageUtilization == nil:
		errs = append(errs, field.Required(p.Child("averageUtilization"), "must set averageUtilization when type is Utilization"))
	case t.Type == autoscalingv2.ValueMetricType && t.Value == nil:
		errs = append(errs, field.Required(p.Child("value"), "must set value when type is Value"))
	case t.Type == autoscalingv2.AverageValueMetricType && t.AverageValue == nil:
		errs = append(errs, field.Required(p.Child("averageValue"), "must set averageValue when type is AverageValue"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		errs = append(errs, field.Invalid(p.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
	}
	for _, q := range []struct {
		name string
		v    *resource.Quantity
	}{{"value", t.Value}, {"averageValue", t.AverageValue}} {
		if q.v != nil && q.v.Sign() <= 0 {
			errs = append(errs, field.Invalid(p.Child(q.name), q.v.String(), "must be positive"))
		}
	}
	return errs
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, p *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > maxStabilizationWindow) {
		errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, fmt.Sprintf("must be between 0 and %d", maxStabilizationWindow)))
	}
	if r.SelectPolicy != nil {
		errs = append(errs, validateEnum(*r.SelectPolicy, p.Child("selectPolicy"),
			autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect)...)
	}
	if len(r.Policies) == 0 {
		errs = append(errs, field.Required(p.Child("policies"), "must specify at least one Policy"))
	}
	for i, pol := range r.Policies {
		pp := p.Child("policies").Index(i)
		errs = append(errs, validateEnum(pol.Type, pp.Child("type"), autoscalingv2.PodsScalingPolicy, autoscalingv2.PercentScalingPolicy)...)
		if pol.Value <= 0 {
			errs = append(errs, field.Invalid(pp.Child("value"), pol.Value, "must be greater than zero"))
		}
		if pol.PeriodSeconds <= 0 || pol.PeriodSeconds > maxScalingPolicyPeriod {
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), pol.PeriodSeconds, fmt.Sprintf("must be greater than zero and less than or equal to %d", maxScalingPolicyPeriod)))
		}
	}
	return errs
}

// validateHPAStatus checks what a status write may set: non-negative
// replica counts and conditions with a type and a status.
func validateHPAStatus(s *autoscalingv2.HorizontalPodAutoscalerStatus) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status")
	if s.CurrentReplicas < 0 {
		errs = append(errs, field.Invalid(p.Child("currentReplicas"), s.CurrentReplicas, "must be greater than or equal to 0"))
	}
	if s.DesiredReplicas < 0 {
		errs = append(errs, field.Invalid(p.Child("desiredReplicas"), s.DesiredReplicas, "must be greater than or equal to 0"))
	}
	for i, c := range s.Conditions {
		cp := p.Child("conditions").Index(i)
		if c.Type == "" {
			errs = append(errs, field.Required(cp.Child("type"), ""))
		}
		errs = append(errs, validateEnum(c.Status, cp.Child("status"), corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown)...)
	}
	return errs
}
