package registry

import (
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validPDB() *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one,
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}
}

func TestValidatePDB(t *testing.T) {
	ptr := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	policy := func(p policyv1.UnhealthyPodEvictionPolicyType) *policyv1.UnhealthyPodEvictionPolicyType { return &p }
	tests := []struct {
		name   string
		mutate func(*policyv1.PodDisruptionBudget)
		field  string // "" = valid
	}{
		{"valid", func(*policyv1.PodDisruptionBudget) {}, ""},
		{"max unavailable percent", func(p *policyv1.PodDisruptionBudget) {
			p.Spec.MinAvailable, p.Spec.MaxUnavailable = nil, ptr(intstr.FromString("50%"))
		}, ""},
		{"neither", func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = nil }, ""},
		{"both", func(p *policyv1.PodDisruptionBudget) { p.Spec.MaxUnavailable = ptr(intstr.FromInt32(1)) }, "spec"},
		{"negative", func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = ptr(intstr.FromInt32(-1)) }, "spec.minAvailable"},
		{"over 100%", func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = ptr(intstr.FromString("150%")) }, "spec.minAvailable"},
		{"not a percentage", func(p *policyv1.PodDisruptionBudget) {
			p.Spec.MaxUnavailable, p.Spec.MinAvailable = ptr(intstr.FromString("half")), nil
		}, "spec.maxUnavailable"},
		{"bad selector", func(p *policyv1.PodDisruptionBudget) {
			p.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}
		}, "spec.selector.matchExpressions[0].operator"},
		{"bad policy", func(p *policyv1.PodDisruptionBudget) { p.Spec.UnhealthyPodEvictionPolicy = policy("Sometimes") }, "spec.unhealthyPodEvictionPolicy"},
		{"good policy", func(p *policyv1.PodDisruptionBudget) {
			p.Spec.UnhealthyPodEvictionPolicy = policy(policyv1.AlwaysAllow)
		}, ""},
		{"no name", func(p *policyv1.PodDisruptionBudget) { p.Name = "" }, "metadata.name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validPDB()
			tc.mutate(p)
			pdbResource.PrepareForCreate(p)
			errs := pdbResource.ValidateCreate(p)
			switch {
			case tc.field == "" && len(errs) > 0:
				t.Errorf("ValidateCreate = %v, want no error", errs)
			case tc.field != "" && (len(errs) == 0 || errs[0].Field != tc.field):
				t.Errorf("ValidateCreate = %v, want an error on %s", errs, tc.field)
			}
		})
	}
}

func TestPDBStatusAndGeneration(t *testing.T) {
	p := validPDB()
	p.Status.DisruptionsAllowed = 5
	pdbResource.PrepareForCreate(p)
	if p.Generation != 1 || p.Status.DisruptionsAllowed != 0 {
		t.Fatalf("after create: generation %d, status %+v; want 1 and an empty status", p.Generation, p.Status)
	}
	upd := p.DeepCopy()
	two := intstr.FromInt32(2)
	upd.Spec.MinAvailable = &two
	upd.Status.DisruptionsAllowed = 3
	pdbResource.PrepareForUpdate(upd, p)
	if upd.Generation != 2 || upd.Status.DisruptionsAllowed != 0 {
		t.Errorf("after a spec update: generation %d, disruptionsAllowed %d; want 2 and the old status", upd.Generation, upd.Status.DisruptionsAllowed)
	}
	st := upd.DeepCopy()
	st.Spec.MinAvailable = nil
	st.Status.DisruptionsAllowed = -1
	pdbResource.PrepareForStatusUpdate(st, upd)
	if st.Spec.MinAvailable == nil {
		t.Error("a status update changed the spec")
	}
	if errs := pdbResource.ValidateStatusUpdate(st, upd); len(errs) == 0 || errs[0].Field != "status.disruptionsAllowed" {
		t.Errorf("ValidateStatusUpdate = %v, want status.disruptionsAllowed refused", errs)
	}
	if row := pdbResource.Row(st); row[1] != "2" || row[2] != "N/A" {
		t.Errorf("row = %v, want min available 2, max unavailable N/A", row)
	}
}
