package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rl(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func validLimitRange() *corev1.LimitRange {
	return &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "default"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:           corev1.LimitTypeContainer,
			Min:            rl("cpu", "100m", "memory", "64Mi"),
			Max:            rl("cpu", "2", "memory", "1Gi"),
			Default:        rl("cpu", "500m", "memory", "256Mi"),
			DefaultRequest: rl("cpu", "200m", "memory", "128Mi"),
		}, {
			Type: corev1.LimitTypePod,
			Max:  rl("cpu", "4"),
		}}},
	}
}

func TestValidateLimitRange(t *testing.T) {
	c := func(l *corev1.LimitRange) *corev1.LimitRangeItem { return &l.Spec.Limits[0] }
	runValidation(t, limitRangeResource, validLimitRange, []validationCase[*corev1.LimitRange]{
		{name: "valid"},
		{"min over max", func(l *corev1.LimitRange) { c(l).Min["cpu"] = resource.MustParse("3") }, []string{
			errKey(invalid, "spec.limits[0].min[cpu]"), errKey(invalid, "spec.limits[0].defaultRequest[cpu]"), errKey(invalid, "spec.limits[0].default[cpu]")}},
		{"default request over default", func(l *corev1.LimitRange) { c(l).DefaultRequest["memory"] = resource.MustParse("512Mi") }, []string{
			errKey(invalid, "spec.limits[0].defaultRequest[memory]")}},
		{"default over max", func(l *corev1.LimitRange) { c(l).Default["cpu"] = resource.MustParse("3") }, []string{
			errKey(invalid, "spec.limits[0].default[cpu]")}},
		{"ratio under 1", func(l *corev1.LimitRange) { c(l).MaxLimitRequestRatio = rl("cpu", "500m") }, []string{
			errKey(invalid, "spec.limits[0].maxLimitRequestRatio[cpu]")}},
		{"ratio over max/min", func(l *corev1.LimitRange) { c(l).MaxLimitRequestRatio = rl("cpu", "30") }, []string{
			errKey(invalid, "spec.limits[0].maxLimitRequestRatio[cpu]")}},
		{"pod default", func(l *corev1.LimitRange) { l.Spec.Limits[1].Default = rl("cpu", "1") }, []string{
			errKey(forbidden, "spec.limits[1].default")}},
		{"duplicate type", func(l *corev1.LimitRange) { l.Spec.Limits[1].Type = corev1.LimitTypeContainer }, []string{
			errKey(duplicate, "spec.limits[1].type")}},
		{"unknown type", func(l *corev1.LimitRange) { l.Spec.Limits[1].Type = "Node" }, []string{
			errKey(invalid, "spec.limits[1].type")}},
		{"not a container resource", func(l *corev1.LimitRange) { c(l).Max["pods"] = resource.MustParse("1") }, []string{
			errKey(invalid, "spec.limits[0].max[pods]")}},
		{"claim without storage", func(l *corev1.LimitRange) {
			l.Spec.Limits = append(l.Spec.Limits, corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim})
		}, []string{errKey(required, "spec.limits[2].limits")}},
	})
}

// A Container limit's default limit falls back to its max, its default
// request to the default limit, else the min.
func TestDefaultLimitRange(t *testing.T) {
	l := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "default"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer,
			Min:  rl("memory", "64Mi", "cpu", "100m"),
			Max:  rl("cpu", "2"),
		}}},
	}
	limitRangeResource.PrepareForCreate(l)
	got := l.Spec.Limits[0]
	want := corev1.LimitRangeItem{
		Type: corev1.LimitTypeContainer, Min: rl("memory", "64Mi", "cpu", "100m"), Max: rl("cpu", "2"),
		Default: rl("cpu", "2"), DefaultRequest: rl("cpu", "2", "memory", "64Mi"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted limit (-want +got):\n%s", diff)
	}
}
