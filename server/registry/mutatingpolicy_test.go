package registry

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validMutatingPolicy() *admissionregistrationv1.MutatingAdmissionPolicy {
	p := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "owner-label"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "labelled", Expression: `has(object.metadata.labels)`}},
			Variables:       []admissionregistrationv1.Variable{{Name: "owner", Expression: "params.data.owner"}},
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
					Expression: `Object{metadata: Object.metadata{labels: {"owner": variables.owner}}}`,
				},
			}, {
				PatchType: admissionregistrationv1.PatchTypeJSONPatch,
				JSONPatch: &admissionregistrationv1.JSONPatch{
					Expression: `[JSONPatch{op: "add", path: "/metadata/annotations", value: {"mutated": "true"}}]`,
				},
			}},
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	mutatingAdmissionPolicyResource.PrepareForCreate(p)
	return p
}

func TestValidateMutatingAdmissionPolicy(t *testing.T) {
	type p = admissionregistrationv1.MutatingAdmissionPolicy
	apply := func(p *p) *admissionregistrationv1.Mutation { return &p.Spec.Mutations[0] }
	runValidation(t, mutatingAdmissionPolicyResource, validMutatingPolicy, []validationCase[*p]{
		{name: "valid"},
		{"no matchConstraints", func(p *p) { p.Spec.MatchConstraints = nil }, []string{errKey(required, "spec.matchConstraints")}},
		{"no resourceRules", func(p *p) { p.Spec.MatchConstraints.ResourceRules = nil },
			[]string{errKey(required, "spec.matchConstraints.resourceRules")}},
		{"delete", func(p *p) {
			p.Spec.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}
		}, []string{errKey(notSupported, "spec.matchConstraints.resourceRules[0].operations[0]")}},
		{"no mutations", func(p *p) { p.Spec.Mutations = nil }, []string{errKey(required, "spec.mutations")}},
		{"no reinvocationPolicy", func(p *p) { p.Spec.ReinvocationPolicy = "" }, []string{errKey(required, "spec.reinvocationPolicy")}},
		{"reinvocationPolicy", func(p *p) { p.Spec.ReinvocationPolicy = "Always" }, []string{errKey(notSupported, "spec.reinvocationPolicy")}},
		{"failurePolicy", func(p *p) { p.Spec.FailurePolicy = ptrTo(admissionregistrationv1.FailurePolicyType("x")) },
			[]string{errKey(notSupported, "spec.failurePolicy")}},
		{"applyConfiguration does not compile", func(p *p) { apply(p).ApplyConfiguration.Expression = `Object{metadata: ` },
			[]string{errKey(invalid, "spec.mutations[0].applyConfiguration.expression")}},
		{"applyConfiguration not an Object", func(p *p) { apply(p).ApplyConfiguration.Expression = `"owner"` },
			[]string{errKey(invalid, "spec.mutations[0].applyConfiguration.expression")}},
		{"applyConfiguration a JSONPatch", func(p *p) {
			apply(p).ApplyConfiguration.Expression = `[JSONPatch{op: "remove", path: "/metadata/labels"}]`
		}, []string{errKey(invalid, "spec.mutations[0].applyConfiguration.expression")}},
		{"jsonPatch an Object", func(p *p) { p.Spec.Mutations[1].JSONPatch.Expression = `Object{}` },
			[]string{errKey(invalid, "spec.mutations[1].jsonPatch.expression")}},
		{"empty expression", func(p *p) { apply(p).ApplyConfiguration.Expression = " " },
			[]string{errKey(required, "spec.mutations[0].applyConfiguration.expression")}},
		{"no applyConfiguration", func(p *p) { apply(p).ApplyConfiguration = nil },
			[]string{errKey(required, "spec.mutations[0].applyConfiguration")}},
		{"both patches", func(p *p) { apply(p).JSONPatch = p.Spec.Mutations[1].JSONPatch },
			[]string{errKey(invalid, "spec.mutations[0].jsonPatch")}},
		{"no patchType", func(p *p) { apply(p).PatchType = "" }, []string{errKey(required, "spec.mutations[0].patchType")}},
		{"patchType", func(p *p) { apply(p).PatchType = "StrategicMerge" }, []string{errKey(notSupported, "spec.mutations[0].patchType")}},
		{"matchCondition", func(p *p) { p.Spec.MatchConditions[0].Expression = `object.metadata.name` + ` +` },
			[]string{errKey(invalid, "spec.matchConditions[0].expression")}},
		{"variable name", func(p *p) { p.Spec.Variables[0].Name = "the-owner" }, []string{errKey(invalid, "spec.variables[0].name")}},
		{"paramKind without kind", func(p *p) { p.Spec.ParamKind.Kind = "" }, []string{errKey(required, "spec.paramKind.kind")}},
	})
}

func TestMutatingAdmissionPolicyDefaults(t *testing.T) {
	p := validMutatingPolicy()
	if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy = %v, want Fail", p.Spec.FailurePolicy)
	}
	m := p.Spec.MatchConstraints
	if m.MatchPolicy == nil || *m.MatchPolicy != admissionregistrationv1.Equivalent || m.NamespaceSelector == nil || m.ObjectSelector == nil {
		t.Errorf("matchConstraints = %+v, want matchPolicy Equivalent and empty selectors", m)
	}
}

func validMutatingBinding() *admissionregistrationv1.MutatingAdmissionPolicyBinding {
	b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "owner-label"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: "owner-label",
			ParamRef: &admissionregistrationv1.ParamRef{Name: "owners", Namespace: "default",
				ParameterNotFoundAction: ptrTo(admissionregistrationv1.DenyAction)},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}},
			},
		},
	}
	mutatingAdmissionPolicyBindingResource.PrepareForCreate(b)
	return b
}

func TestValidateMutatingAdmissionPolicyBinding(t *testing.T) {
	type b = admissionregistrationv1.MutatingAdmissionPolicyBinding
	runValidation(t, mutatingAdmissionPolicyBindingResource, validMutatingBinding, []validationCase[*b]{
		{name: "valid"},
		{"no policy", func(b *b) { b.Spec.PolicyName = "" }, []string{errKey(required, "spec.policyName")}},
		{"policy name", func(b *b) { b.Spec.PolicyName = "Owner_Label" }, []string{errKey(invalid, "spec.policyName")}},
		{"name and selector", func(b *b) { b.Spec.ParamRef.Selector = &metav1.LabelSelector{} },
			[]string{errKey(forbidden, "spec.paramRef.name")}},
		{"no parameterNotFoundAction", func(b *b) { b.Spec.ParamRef.ParameterNotFoundAction = nil },
			[]string{errKey(required, "spec.paramRef.parameterNotFoundAction")}},
		{"delete", func(b *b) {
			b.Spec.MatchResources.ResourceRules = []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}
		}, []string{errKey(notSupported, "spec.matchResources.resourceRules[0].operations[0]")}},
	})
}
