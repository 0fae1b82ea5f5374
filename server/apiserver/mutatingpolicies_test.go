package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ownerPolicy labels new pods with the owner of its ConfigMap parameters
// (ApplyConfiguration) and gives their first container an OWNER env var
// (JSONPatch), unless the pod is labelled unowned.
func ownerPolicy() *admissionregistrationv1.MutatingAdmissionPolicy {
	return &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "owner"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "owned", Expression: `!has(object.metadata.labels) || !("unowned" in object.metadata.labels)`}},
			Variables:       []admissionregistrationv1.Variable{{Name: "owner", Expression: "params.data.owner"}},
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
					Expression: `Object{metadata: Object.metadata{labels: {"owner": variables.owner}}}`,
				},
			}, {
				PatchType: admissionregistrationv1.PatchTypeJSONPatch,
				JSONPatch: &admissionregistrationv1.JSONPatch{
					Expression: `[JSONPatch{op: "add", path: "/spec/containers/0/env", value: [Object.spec.containers.env{name: "OWNER", value: variables.owner}]}]`,
				},
			}},
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
}

func ownerBinding() *admissionregistrationv1.MutatingAdmissionPolicyBinding {
	return &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "owner"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: "owner",
			ParamRef: &admissionregistrationv1.ParamRef{Name: "owners", Namespace: "default",
				ParameterNotFoundAction: ptr.To(admissionregistrationv1.DenyAction)},
		},
	}
}

func (ts *testServer) addMutatingPolicy(t *testing.T, p *admissionregistrationv1.MutatingAdmissionPolicy, b *admissionregistrationv1.MutatingAdmissionPolicyBinding) {
	t.Helper()
	ctx := testContext(t)
	api := ts.client.AdmissionregistrationV1()
	if _, err := api.MutatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create policy: %v", err)
	}
	ts.waitAdmission(t, "/registry/mutatingadmissionpolicies/"+p.Name)
	if _, err := api.MutatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create binding: %v", err)
	}
	ts.waitAdmission(t, "/registry/mutatingadmissionpolicybindings/"+b.Name)
}

// waitAdmissionGeneration waits until the admission cache holds
// generation gen of the object stored at key.
func (ts *testServer) waitAdmissionGeneration(t *testing.T, key string, gen int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts.admissionCache.mu.Lock()
		obj, ok := ts.admissionCache.objs[key]
		ts.admissionCache.mu.Unlock()
		if m, err := meta.Accessor(obj); ok && err == nil && m.GetGeneration() >= gen {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("admission cache never held generation %d of %s", gen, key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMutatingAdmissionPolicyMutatesPods checks that a created pod is
// stored as the policy mutated it, and that the mutation comes before
// validation: a validating policy requiring the owner label admits it.
func TestMutatingAdmissionPolicyMutatesPods(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	owners := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owners", Namespace: "default"}, Data: map[string]string{"owner": "team-a"}}
	if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx, owners, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.addMutatingPolicy(t, ownerPolicy(), ownerBinding())
	required := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "owner-required"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: ownerPolicy().Spec.MatchConstraints,
			Validations:      []admissionregistrationv1.Validation{{Expression: `"owner" in object.metadata.labels || "unowned" in object.metadata.labels`}},
		},
	}
	ts.addPolicy(t, required, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "owner-required"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "owner-required",
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}},
	})

	pods := ts.client.CoreV1().Pods("default")
	created, err := pods.Create(ctx, testPod("web", map[string]string{"app": "web"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	stored, err := pods.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{created, stored} {
		if p.Labels["owner"] != "team-a" || p.Labels["app"] != "web" {
			t.Errorf("labels = %v, want app=web and owner=team-a", p.Labels)
		}
		if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0] != (corev1.EnvVar{Name: "OWNER", Value: "team-a"}) {
			t.Errorf("env = %v, want OWNER=team-a", env)
		}
	}

	unowned, err := pods.Create(ctx, testPod("free", map[string]string{"unowned": ""}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create unowned pod: %v", err)
	}
	if _, ok := unowned.Labels["owner"]; ok || len(unowned.Spec.Containers[0].Env) != 0 {
		t.Errorf("unowned pod mutated (matchCondition false): labels %v, env %v", unowned.Labels, unowned.Spec.Containers[0].Env)
	}
}

// TestMutatingAdmissionPolicyFails checks that a policy whose mutation
// fails denies the create under failurePolicy Fail, naming the policy,
// and stores nothing; under Ignore the pod is created unmutated.
func TestMutatingAdmissionPolicyFails(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	p := ownerPolicy()
	p.Spec.ParamKind = nil
	p.Spec.Variables[0].Expression = "object.spec.nodeName" // unset: an evaluation error
	b := ownerBinding()
	b.Spec.ParamRef = nil
	ts.addMutatingPolicy(t, p, b)

	pods := ts.client.CoreV1().Pods("default")
	_, err := pods.Create(ctx, testPod("web", nil), metav1.CreateOptions{})
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != http.StatusForbidden ||
		!strings.Contains(se.ErrStatus.Message, "policy 'owner' with binding 'owner' denied request") {
		t.Errorf("create = %v, want 403 naming the policy", err)
	}
	if _, err := pods.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after the denied create = %v, want NotFound", err)
	}

	p, err = ts.client.AdmissionregistrationV1().MutatingAdmissionPolicies().Get(ctx, "owner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
	if _, err := ts.client.AdmissionregistrationV1().MutatingAdmissionPolicies().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.waitAdmissionGeneration(t, "/registry/mutatingadmissionpolicies/owner", 2)
	created, err := pods.Create(ctx, testPod("web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create under Ignore = %v", err)
	}
	if len(created.Labels) != 0 {
		t.Errorf("labels = %v, want none", created.Labels)
	}
}

// TestMutatingAdmissionPolicyValidation checks that a policy whose
// expression does not compile is refused with 422 naming the field.
func TestMutatingAdmissionPolicyValidation(t *testing.T) {
	ts := newTestServer(t)
	p := ownerPolicy()
	p.Spec.Mutations[0].ApplyConfiguration.Expression = `Object{metadata: Object.metadata{labels: {"owner": }}}`
	_, err := ts.client.AdmissionregistrationV1().MutatingAdmissionPolicies().Create(testContext(t), p, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("create = %v, want 422", err)
	}
	causes := err.(apierrors.APIStatus).Status().Details.Causes
	if len(causes) != 1 || causes[0].Field != "spec.mutations[0].applyConfiguration.expression" {
		t.Errorf("causes = %+v, want one for spec.mutations[0].applyConfiguration.expression", causes)
	}
}

// TestMutatingAdmissionPolicyDeployments checks a policy and binding
// that select namespaces by label, as the conformance suite writes them:
// a Deployment created in a selected namespace gets the replicas and
// annotation the policy sets, and one in another namespace does not.
func TestMutatingAdmissionPolicyDeployments(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	selected := &metav1.LabelSelector{MatchLabels: map[string]string{"mutate": "true"}}
	for name, labels := range map[string]map[string]string{"picked": selected.MatchLabels, "left": nil} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := ts.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: selected,
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					},
				}},
			},
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
					Expression: `Object{metadata: Object.metadata{annotations: {"mutated-by": "admission-policy"}}, spec: Object.spec{replicas: 1337}}`,
				},
			}},
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "replicas",
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: selected}},
	}
	ts.addMutatingPolicy(t, p, b)
	for _, tc := range []struct {
		ns   string
		want int32
	}{{"picked", 1337}, {"left", 1}} {
		d, err := ts.client.AppsV1().Deployments(tc.ns).Create(ctx, testDeployment(), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create in %s: %v", tc.ns, err)
		}
		mutated := tc.want == 1337
		if *d.Spec.Replicas != tc.want || (d.Annotations["mutated-by"] == "admission-policy") != mutated {
			t.Errorf("deployment in %s: replicas %d, annotations %v; want replicas %d", tc.ns, *d.Spec.Replicas, d.Annotations, tc.want)
		}
	}
}

// TestMutatingAdmissionPolicyAddsContainer checks that a container an
// apply configuration adds (containers merge by name) is defaulted as a
// client's would be, so that the pod passes validation.
func TestMutatingAdmissionPolicyAddsContainer(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	p := ownerPolicy()
	p.Spec.ParamKind, p.Spec.Variables, p.Spec.MatchConditions = nil, nil, nil
	p.Spec.Mutations = []admissionregistrationv1.Mutation{{
		PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
		ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
			Expression: `Object{spec: Object.spec{containers: [Object.spec.containers{name: "side", image: "pause:3.10"}]}}`,
		},
	}}
	b := ownerBinding()
	b.Spec.ParamRef = nil
	ts.addMutatingPolicy(t, p, b)
	pod, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if n := len(pod.Spec.Containers); n != 2 || pod.Spec.Containers[0].Name != "main" || pod.Spec.Containers[1].Name != "side" {
		t.Fatalf("containers = %+v, want main and side", pod.Spec.Containers)
	}
	side := pod.Spec.Containers[1]
	if side.ImagePullPolicy != corev1.PullIfNotPresent || side.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
		t.Errorf("side container pull policy %q, termination message policy %q; want the defaults", side.ImagePullPolicy, side.TerminationMessagePolicy)
	}
}

// TestMutatingAdmissionPolicyDiscovery checks that discovery lists both
// kinds with every verb and that the OpenAPI document of the group has
// their schemas (what kubectl explain reads).
func TestMutatingAdmissionPolicyDiscovery(t *testing.T) {
	ts := newTestServer(t)
	list, err := ts.client.Discovery().ServerResourcesForGroupVersion("admissionregistration.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, r := range list.APIResources {
		if r.Name == "mutatingadmissionpolicies" || r.Name == "mutatingadmissionpolicybindings" {
			found[r.Kind] = !r.Namespaced && strings.Join(r.Verbs, ",") == "create,delete,deletecollection,get,list,patch,update,watch"
		}
	}
	if !found["MutatingAdmissionPolicy"] || !found["MutatingAdmissionPolicyBinding"] {
		t.Errorf("discovery: %v, want both kinds cluster-scoped with every verb", found)
	}
	resp, err := http.Get(ts.url + "/openapi/v3/apis/admissionregistration.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for name, prop := range map[string]string{
		"io.k8s.api.admissionregistration.v1.MutatingAdmissionPolicySpec":        "mutations",
		"io.k8s.api.admissionregistration.v1.MutatingAdmissionPolicyBindingSpec": "policyName",
	} {
		if _, ok := doc.Components.Schemas[name].Properties[prop]; !ok {
			t.Errorf("OpenAPI schema %s has no property %s", name, prop)
		}
	}
}
