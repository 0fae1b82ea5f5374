package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testCA is a self-signed certificate, as a caBundle holds.
var testCA = func() string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}()

func validValidatingWebhooks() *admissionregistrationv1.ValidatingWebhookConfiguration {
	none := admissionregistrationv1.SideEffectClassNone
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "check"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "check.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service:  &admissionregistrationv1.ServiceReference{Namespace: "default", Name: "hook", Path: ptrTo("/validate")},
				CABundle: []byte(testCA),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "pods/status"}},
			}},
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: "not-kube-system", Expression: `object.metadata.namespace != "kube-system"`}},
		}},
	}
	validatingWebhookConfigurationResource.PrepareForCreate(c)
	return c
}

func TestValidateValidatingWebhookConfiguration(t *testing.T) {
	type c = admissionregistrationv1.ValidatingWebhookConfiguration
	hook := func(c *c) *admissionregistrationv1.ValidatingWebhook { return &c.Webhooks[0] }
	rule := func(c *c) *admissionregistrationv1.Rule { return &c.Webhooks[0].Rules[0].Rule }
	runValidation(t, validatingWebhookConfigurationResource, validValidatingWebhooks, []validationCase[*c]{
		{name: "valid"},
		{"url instead of service", func(c *c) {
			hook(c).ClientConfig.Service, hook(c).ClientConfig.URL = nil, ptrTo("https://hook.example.com:8443/v")
		}, nil},
		{"name not qualified", func(c *c) { hook(c).Name = "check" }, []string{errKey(invalid, "webhooks[0].name")}},
		{"duplicate name", func(c *c) { c.Webhooks = append(c.Webhooks, c.Webhooks[0]) }, []string{errKey(duplicate, "webhooks[1].name")}},
		{"url and service", func(c *c) { hook(c).ClientConfig.URL = ptrTo("https://x.example.com") },
			[]string{errKey(invalid, "webhooks[0].clientConfig")}},
		{"neither url nor service", func(c *c) { hook(c).ClientConfig.Service = nil },
			[]string{errKey(required, "webhooks[0].clientConfig")}},
		{"http url", func(c *c) {
			hook(c).ClientConfig.Service, hook(c).ClientConfig.URL = nil, ptrTo("http://x.example.com")
		},
			[]string{errKey(invalid, "webhooks[0].clientConfig.url")}},
		{"url with query", func(c *c) {
			hook(c).ClientConfig.Service, hook(c).ClientConfig.URL = nil, ptrTo("https://x.example.com/?a=b")
		},
			[]string{errKey(invalid, "webhooks[0].clientConfig.url")}},
		{"empty service path", func(c *c) { hook(c).ClientConfig.Service.Path = ptrTo("") }, nil},
		{"service path", func(c *c) { hook(c).ClientConfig.Service.Path = ptrTo("validate") },
			[]string{errKey(invalid, "webhooks[0].clientConfig.service.path")}},
		{"service port", func(c *c) { hook(c).ClientConfig.Service.Port = ptrTo(int32(70000)) },
			[]string{errKey(invalid, "webhooks[0].clientConfig.service.port")}},
		{"bad caBundle", func(c *c) { hook(c).ClientConfig.CABundle = []byte("not pem") },
			[]string{errKey(invalid, "webhooks[0].clientConfig.caBundle")}},
		{"no sideEffects", func(c *c) { hook(c).SideEffects = nil }, []string{errKey(required, "webhooks[0].sideEffects")}},
		{"sideEffects Some", func(c *c) { hook(c).SideEffects = ptrTo(admissionregistrationv1.SideEffectClassSome) },
			[]string{errKey(notSupported, "webhooks[0].sideEffects")}},
		{"no review versions", func(c *c) { hook(c).AdmissionReviewVersions = nil },
			[]string{errKey(required, "webhooks[0].admissionReviewVersions")}},
		{"unknown review version only", func(c *c) { hook(c).AdmissionReviewVersions = []string{"v2"} },
			[]string{errKey(invalid, "webhooks[0].admissionReviewVersions")}},
		{"failurePolicy", func(c *c) { hook(c).FailurePolicy = ptrTo(admissionregistrationv1.FailurePolicyType("Sometimes")) },
			[]string{errKey(notSupported, "webhooks[0].failurePolicy")}},
		{"matchPolicy", func(c *c) { hook(c).MatchPolicy = ptrTo(admissionregistrationv1.MatchPolicyType("Close")) },
			[]string{errKey(notSupported, "webhooks[0].matchPolicy")}},
		{"timeout 0", func(c *c) { hook(c).TimeoutSeconds = ptrTo(int32(0)) }, []string{errKey(invalid, "webhooks[0].timeoutSeconds")}},
		{"timeout 31", func(c *c) { hook(c).TimeoutSeconds = ptrTo(int32(31)) }, []string{errKey(invalid, "webhooks[0].timeoutSeconds")}},
		{"timeout 30", func(c *c) { hook(c).TimeoutSeconds = ptrTo(int32(30)) }, nil},
		{"no operations", func(c *c) { hook(c).Rules[0].Operations = nil }, []string{errKey(required, "webhooks[0].rules[0].operations")}},
		{"wildcard and operation", func(c *c) {
			hook(c).Rules[0].Operations = []admissionregistrationv1.OperationType{"*", admissionregistrationv1.Create}
		}, []string{errKey(invalid, "webhooks[0].rules[0].operations")}},
		{"unknown operation", func(c *c) { hook(c).Rules[0].Operations = []admissionregistrationv1.OperationType{"PATCH"} },
			[]string{errKey(notSupported, "webhooks[0].rules[0].operations[0]")}},
		{"no groups", func(c *c) { rule(c).APIGroups = nil }, []string{errKey(required, "webhooks[0].rules[0].apiGroups")}},
		{"no resources", func(c *c) { rule(c).Resources = nil }, []string{errKey(required, "webhooks[0].rules[0].resources")}},
		{"*/* with others", func(c *c) { rule(c).Resources = []string{"*/*", "pods"} }, []string{errKey(invalid, "webhooks[0].rules[0].resources")}},
		{"* with a resource", func(c *c) { rule(c).Resources = []string{"*", "pods"} }, []string{errKey(invalid, "webhooks[0].rules[0].resources[1]")}},
		{"pods/* with pods/status", func(c *c) { rule(c).Resources = []string{"pods/*", "pods/status"} },
			[]string{errKey(invalid, "webhooks[0].rules[0].resources[1]")}},
		{"scope", func(c *c) { hook(c).Rules[0].Scope = ptrTo(admissionregistrationv1.ScopeType("Node")) },
			[]string{errKey(notSupported, "webhooks[0].rules[0].scope")}},
		{"bad selector", func(c *c) {
			hook(c).NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}
		}, []string{errKey(invalid, "webhooks[0].namespaceSelector.matchExpressions[0].operator")}},
		{"matchCondition does not compile", func(c *c) { hook(c).MatchConditions[0].Expression = "object.metadata.name ==" },
			[]string{errKey(invalid, "webhooks[0].matchConditions[0].expression")}},
		{"matchCondition not bool", func(c *c) { hook(c).MatchConditions[0].Expression = `"yes"` },
			[]string{errKey(invalid, "webhooks[0].matchConditions[0].expression")}},
		{"matchCondition unknown variable", func(c *c) { hook(c).MatchConditions[0].Expression = "params.x" },
			[]string{errKey(invalid, "webhooks[0].matchConditions[0].expression")}},
		{"matchCondition no name", func(c *c) { hook(c).MatchConditions[0].Name = "" },
			[]string{errKey(required, "webhooks[0].matchConditions[0].name")}},
		{"bad config name", func(c *c) { c.Name = "Check" }, []string{errKey(invalid, "metadata.name")}},
	})
}

func TestWebhookDefaults(t *testing.T) {
	c := validValidatingWebhooks()
	w := c.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Fail || *w.MatchPolicy != admissionregistrationv1.Equivalent ||
		*w.TimeoutSeconds != 10 || *w.ClientConfig.Service.Port != 443 || *w.Rules[0].Scope != admissionregistrationv1.AllScopes ||
		w.NamespaceSelector == nil || w.ObjectSelector == nil {
		t.Errorf("defaults not applied: %+v", w)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "m.example.com"}}}
	mutatingWebhookConfigurationResource.PrepareForCreate(m)
	if p := m.Webhooks[0].ReinvocationPolicy; p == nil || *p != admissionregistrationv1.NeverReinvocationPolicy {
		t.Errorf("reinvocationPolicy = %v, want Never", p)
	}
}

func validPolicy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				},
			}}},
			Variables: []admissionregistrationv1.Variable{{Name: "max", Expression: "int(params.data.max)"}},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "object.spec.replicas <= variables.max",
				MessageExpression: `"too many replicas: " + string(object.spec.replicas)`,
			}},
		},
	}
	validatingAdmissionPolicyResource.PrepareForCreate(p)
	return p
}

func TestValidateValidatingAdmissionPolicy(t *testing.T) {
	type p = admissionregistrationv1.ValidatingAdmissionPolicy
	runValidation(t, validatingAdmissionPolicyResource, validPolicy, []validationCase[*p]{
		{name: "valid"},
		{"no matchConstraints", func(p *p) { p.Spec.MatchConstraints = nil }, []string{errKey(required, "spec.matchConstraints")}},
		{"no resourceRules", func(p *p) { p.Spec.MatchConstraints.ResourceRules = nil },
			[]string{errKey(required, "spec.matchConstraints.resourceRules")}},
		{"no validations", func(p *p) { p.Spec.Validations = nil }, []string{errKey(required, "spec.validations")}},
		{"expression not bool", func(p *p) { p.Spec.Validations[0].Expression = "object.spec.replicas + 1 == 2 ? 1 : 2" },
			[]string{errKey(invalid, "spec.validations[0].expression")}},
		{"messageExpression does not compile", func(p *p) { p.Spec.Validations[0].MessageExpression = `"a" +` },
			[]string{errKey(invalid, "spec.validations[0].messageExpression")}},
		{"message with newline", func(p *p) { p.Spec.Validations[0].Message = "a\nb" },
			[]string{errKey(invalid, "spec.validations[0].message")}},
		{"reason", func(p *p) { p.Spec.Validations[0].Reason = ptrTo(metav1.StatusReasonConflict) },
			[]string{errKey(notSupported, "spec.validations[0].reason")}},
		{"variable name", func(p *p) { p.Spec.Variables[0].Name = "my-max" }, []string{errKey(invalid, "spec.variables[0].name")}},
		{"paramKind without kind", func(p *p) { p.Spec.ParamKind.Kind = "" }, []string{errKey(required, "spec.paramKind.kind")}},
		{"failurePolicy", func(p *p) { p.Spec.FailurePolicy = ptrTo(admissionregistrationv1.FailurePolicyType("x")) },
			[]string{errKey(notSupported, "spec.failurePolicy")}},
	})
}

func validBinding() *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: "replicas",
			ParamRef: &admissionregistrationv1.ParamRef{Name: "limits", Namespace: "default",
				ParameterNotFoundAction: ptrTo(admissionregistrationv1.DenyAction)},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	validatingAdmissionPolicyBindingResource.PrepareForCreate(b)
	return b
}

func TestValidateValidatingAdmissionPolicyBinding(t *testing.T) {
	type b = admissionregistrationv1.ValidatingAdmissionPolicyBinding
	runValidation(t, validatingAdmissionPolicyBindingResource, validBinding, []validationCase[*b]{
		{name: "valid"},
		{"no policy", func(b *b) { b.Spec.PolicyName = "" }, []string{errKey(required, "spec.policyName")}},
		{"no actions", func(b *b) { b.Spec.ValidationActions = nil }, []string{errKey(required, "spec.validationActions")}},
		{"deny and warn", func(b *b) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn}
		}, []string{errKey(invalid, "spec.validationActions")}},
		{"unknown action", func(b *b) { b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{"Log"} },
			[]string{errKey(notSupported, "spec.validationActions[0]")}},
		{"name and selector", func(b *b) { b.Spec.ParamRef.Selector = &metav1.LabelSelector{} },
			[]string{errKey(forbidden, "spec.paramRef.name")}},
		{"no parameterNotFoundAction", func(b *b) { b.Spec.ParamRef.ParameterNotFoundAction = nil },
			[]string{errKey(required, "spec.paramRef.parameterNotFoundAction")}},
	})
}
