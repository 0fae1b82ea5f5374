package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validQuota() *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "quota", Namespace: "default"},
		Spec:       corev1.ResourceQuotaSpec{Hard: rl("pods", "10", "requests.cpu", "2", "count/configmaps", "5", "services.nodeports", "1")},
	}
}

func TestValidateResourceQuota(t *testing.T) {
	runValidation(t, resourceQuotaResource, validQuota, []validationCase[*corev1.ResourceQuota]{
		{name: "valid"},
		{"negative", func(q *corev1.ResourceQuota) { q.Spec.Hard["pods"] = resource.MustParse("-1") }, []string{errKey(invalid, "spec.hard[pods]")}},
		{"fractional count", func(q *corev1.ResourceQuota) { q.Spec.Hard["pods"] = resource.MustParse("1500m") }, []string{errKey(invalid, "spec.hard[pods]")}},
		{"unknown resource", func(q *corev1.ResourceQuota) { q.Spec.Hard["widgets"] = resource.MustParse("1") }, []string{errKey(invalid, "spec.hard[widgets]")}},
		{"storage is no quota resource", func(q *corev1.ResourceQuota) { q.Spec.Hard["storage"] = resource.MustParse("1") }, []string{errKey(invalid, "spec.hard[storage]")}},
		{"scope valid", func(q *corev1.ResourceQuota) {
			q.Spec.Hard = rl("pods", "1", "cpu", "1")
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotBestEffort}
		}, nil},
		{"scope for wrong resource", func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
		}, []string{errKey(invalid, "spec.scopes"), errKey(invalid, "spec.scopes")}}, // requests.cpu, services.nodeports
		{"conflicting scopes", func(q *corev1.ResourceQuota) {
			q.Spec.Hard = rl("pods", "1")
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating}
		}, []string{errKey(invalid, "spec.scopes")}},
		{"selector operator", func(q *corev1.ResourceQuota) {
			q.Spec.Hard = rl("pods", "1")
			q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
				{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn},
			}}
		}, []string{errKey(required, "spec.scopeSelector.matchExpressions.values")}},
	})
	runUpdate(t, resourceQuotaResource, false, func() *corev1.ResourceQuota { return stored(resourceQuotaResource, validQuota()) },
		[]validationCase[*corev1.ResourceQuota]{
			{"scopes immutable", func(q *corev1.ResourceQuota) {
				q.Spec.Hard = rl("pods", "1")
				q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
			}, []string{errKey(invalid, "spec.scopes")}},
		})
	runUpdate(t, resourceQuotaResource, true, func() *corev1.ResourceQuota { return stored(resourceQuotaResource, validQuota()) },
		[]validationCase[*corev1.ResourceQuota]{
			{"status used", func(q *corev1.ResourceQuota) { q.Status.Used = rl("pods", "2") }, nil},
			{"negative used", func(q *corev1.ResourceQuota) { q.Status.Used = rl("pods", "-2") }, []string{errKey(invalid, "status.used[pods]")}},
		})
}
