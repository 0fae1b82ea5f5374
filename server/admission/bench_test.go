package admission

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkValidateNoConfigurations is the cost the chain adds to every
// write while nothing is configured.
func BenchmarkValidateNoConfigurations(b *testing.B) {
	c := New(Config{})
	a := configMapAttributes(admissionv1.Create, false)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Validate(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidatePolicy evaluates one policy with a variable, a match
// condition and a validation with a messageExpression per request.
func BenchmarkValidatePolicy(b *testing.B) {
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				},
			}}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "named", Expression: `object.metadata.name != ""`}},
			Variables:       []admissionregistrationv1.Variable{{Name: "n", Expression: "size(object.metadata.name)"}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "variables.n < 64", MessageExpression: `"name too long: " + object.metadata.name`,
			}},
		},
	}
	bd := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "b"},
		Spec:       admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "p", ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}},
	}
	c := New(Config{})
	c.Update(Configurations{Policies: []*admissionregistrationv1.ValidatingAdmissionPolicy{p}, Bindings: []*admissionregistrationv1.ValidatingAdmissionPolicyBinding{bd}})
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Validate(ctx, configMapAttributes(admissionv1.Create, false)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateWebhook calls one url webhook over HTTPS per request
// (a new connection and TLS handshake each time).
func BenchmarkValidateWebhook(b *testing.B) {
	ca, cert := servingCert(b, "127.0.0.1")
	got := make(chan *admissionv1.AdmissionReview, 1)
	srv := reviewServer(b, cert, admissionv1.AdmissionResponse{Allowed: true}, got)
	go func() {
		for range got {
		}
	}()
	url := srv.URL + "/v"
	c := New(Config{})
	c.Update(Configurations{Validating: []*admissionregistrationv1.ValidatingWebhookConfiguration{
		validatingConfig("w", admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca}, admissionregistrationv1.SideEffectClassNone, "v1"),
	}})
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Validate(ctx, configMapAttributes(admissionv1.Create, false)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMutatePolicy applies one mutating policy to a pod per request,
// with the given mutation: an apply configuration merged by the pod's
// schema, or a JSON patch.
func BenchmarkMutatePolicy(b *testing.B) {
	for _, m := range []admissionregistrationv1.Mutation{
		applyConfig(`Object{metadata: Object.metadata{labels: {"owner": "team-" + object.metadata.name}}}`),
		jsonPatch(`[JSONPatch{op: "add", path: "/metadata/labels/owner", value: "team-" + object.metadata.name}]`),
	} {
		b.Run(string(m.PatchType), func(b *testing.B) {
			p, bd := mutatingPolicy("owner", m)
			c := chainWith(Config{}, p, bd)
			ctx := context.Background()
			for b.Loop() {
				a := podAttributes(admissionv1.Create, testPod())
				if _, err := c.Mutate(ctx, a); err != nil {
					b.Fatal(err)
				}
				if a.Object.(*corev1.Pod).Labels["owner"] != "team-web" {
					b.Fatalf("labels = %v, want owner=team-web", a.Object.(*corev1.Pod).Labels)
				}
			}
		})
	}
}
