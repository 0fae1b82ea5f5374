package apiserver

import (
	"net/http"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// secretNamePolicy limits the length of Secret names to the maxlen of
// its ConfigMap parameters.
func secretNamePolicy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "short-secrets"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "not-exempt", Expression: `!has(object.metadata.labels) || !("exempt" in object.metadata.labels)`}},
			Variables:       []admissionregistrationv1.Variable{{Name: "max", Expression: "int(params.data.maxlen)"}},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "size(object.metadata.name) <= variables.max",
				MessageExpression: `"name " + object.metadata.name + " is longer than " + string(variables.max)`,
				Reason:            ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
}

func binding(name, ns string, actions ...admissionregistrationv1.ValidationAction) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: "short-secrets",
			ParamRef: &admissionregistrationv1.ParamRef{Name: "limits", Namespace: "default",
				ParameterNotFoundAction: ptr.To(admissionregistrationv1.DenyAction)},
			ValidationActions: actions,
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			},
		},
	}
}

func (ts *testServer) addPolicy(t *testing.T, p *admissionregistrationv1.ValidatingAdmissionPolicy, bs ...*admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	ctx := testContext(t)
	api := ts.client.AdmissionregistrationV1()
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create policy: %v", err)
	}
	ts.waitAdmission(t, "/registry/validatingadmissionpolicies/"+p.Name)
	for _, b := range bs {
		if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create binding: %v", err)
		}
		ts.waitAdmission(t, "/registry/validatingadmissionpolicybindings/"+b.Name)
	}
}

func secret(ns, name string, labels map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

func TestValidatingAdmissionPolicyDenies(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unparamed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	limits := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "default"}, Data: map[string]string{"maxlen": "5"}}
	if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx, limits, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := binding("deny-default", "default", admissionregistrationv1.Deny)
	nb := binding("deny-unparamed", "unparamed", admissionregistrationv1.Deny)
	nb.Spec.ParamRef.Name = "missing"
	ts.addPolicy(t, secretNamePolicy(), b, nb)

	secrets := ts.client.CoreV1().Secrets("default")
	if _, err := secrets.Create(ctx, secret("default", "short", nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("create short: %v", err)
	}
	_, err := secrets.Create(ctx, secret("default", "toolong", nil), metav1.CreateOptions{})
	want := "ValidatingAdmissionPolicy 'short-secrets' with binding 'deny-default' denied request: name toolong is longer than 5"
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("create toolong = %v, want 403 %q", err, want)
	}
	if _, err := secrets.Create(ctx, secret("default", "exemptlong", map[string]string{"exempt": ""}), metav1.CreateOptions{}); err != nil {
		t.Errorf("create exempt (matchCondition false) = %v, want allowed", err)
	}
	_, err = ts.client.CoreV1().Secrets("unparamed").Create(ctx, secret("unparamed", "s", nil), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "no params found") {
		t.Errorf("create with missing params = %v, want the Deny parameterNotFoundAction", err)
	}
}

func TestValidatingAdmissionPolicyWarns(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	limits := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "default"}, Data: map[string]string{"maxlen": "3"}}
	if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx, limits, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.addPolicy(t, secretNamePolicy(), binding("warn-default", "default", admissionregistrationv1.Warn, admissionregistrationv1.Audit))

	body := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"longname"}}`
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/v1/namespaces/default/secrets", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create status %d, want 201 (Warn does not deny)", resp.StatusCode)
	}
	w := resp.Header.Values("Warning")
	want := "Validation failed for ValidatingAdmissionPolicy 'short-secrets' with binding 'warn-default': name longname is longer than 3"
	if len(w) != 1 || !strings.Contains(w[0], want) {
		t.Errorf("Warning = %q, want %q", w, want)
	}
}

func TestValidatingAdmissionPolicyValidation(t *testing.T) {
	ts := newTestServer(t)
	p := secretNamePolicy()
	p.Spec.Validations[0].Expression = "size(object.metadata.name) <="
	_, err := ts.client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(testContext(t), p, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("create = %v, want 422", err)
	}
	causes := err.(*apierrors.StatusError).ErrStatus.Details.Causes
	if len(causes) != 1 || causes[0].Field != "spec.validations[0].expression" {
		t.Errorf("causes = %+v, want spec.validations[0].expression", causes)
	}
}
