package admission

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// builtinSchemas are the schemas client-go carries for the built-in
// kinds, as the API server uses.
type builtinSchemas struct{ tc managedfields.TypeConverter }

func (s builtinSchemas) TypeConverter(schema.GroupVersionKind) managedfields.TypeConverter {
	return s.tc
}

var testSchemas = builtinSchemas{applyconfigurations.NewTypeConverter(scheme.Scheme)}

// configMapParams serves ConfigMaps as policy parameters from memory.
type configMapParams map[string]*corev1.ConfigMap // by namespace/name

func (p configMapParams) Params(_ context.Context, gvk schema.GroupVersionKind, ns, name string, sel labels.Selector) ([]runtime.Object, error) {
	if gvk != (schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}) {
		return nil, errors.New("unknown paramKind")
	}
	var out []runtime.Object
	for key, cm := range p {
		if !strings.HasPrefix(key, ns+"/") {
			continue
		}
		if (name != "" && cm.Name == name) || (name == "" && sel.Matches(labels.Set(cm.Labels))) {
			out = append(out, cm)
		}
	}
	return out, nil
}

func podAttributes(op admissionv1.Operation, pod *corev1.Pod) *Attributes {
	return &Attributes{
		Operation: op, Kind: schema.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:   schema.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespaced: true, Namespace: pod.Namespace, Name: pod.Name, Object: pod,
	}
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "main", Image: "busybox:1.36", Env: []corev1.EnvVar{{Name: "A", Value: "1"}}},
			{Name: "side", Image: "pause:3.10"},
		}},
	}
}

// mutatingPolicy is a policy on pod creates and updates with the given
// mutations, and its binding of the same name.
func mutatingPolicy(name string, ms ...admissionregistrationv1.Mutation) (*admissionregistrationv1.MutatingAdmissionPolicy, *admissionregistrationv1.MutatingAdmissionPolicyBinding) {
	p := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			Mutations:          ms,
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: name},
	}
	return p, b
}

func applyConfig(expr string) admissionregistrationv1.Mutation {
	return admissionregistrationv1.Mutation{PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
		ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: expr}}
}

func jsonPatch(expr string) admissionregistrationv1.Mutation {
	return admissionregistrationv1.Mutation{PatchType: admissionregistrationv1.PatchTypeJSONPatch,
		JSONPatch: &admissionregistrationv1.JSONPatch{Expression: expr}}
}

// chainWith returns a chain holding the policies and bindings.
func chainWith(cfg Config, pbs ...any) *Chain {
	if cfg.Schemas == nil {
		cfg.Schemas = testSchemas
	}
	c := New(cfg)
	var cs Configurations
	for _, x := range pbs {
		switch o := x.(type) {
		case *admissionregistrationv1.MutatingAdmissionPolicy:
			cs.MutatingPolicies = append(cs.MutatingPolicies, o)
		case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
			cs.MutatingBindings = append(cs.MutatingBindings, o)
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			cs.Mutating = append(cs.Mutating, o)
		}
	}
	c.Update(cs)
	return c
}

// isPolicyDenial reports whether err is a policy's 403 naming policy.
func isPolicyDenial(err error, policy string) bool {
	var se *apierrors.StatusError
	return errors.As(err, &se) && se.ErrStatus.Code == http.StatusForbidden &&
		strings.HasPrefix(se.ErrStatus.Message, "policy '"+policy+"' with binding '"+policy+"' denied request: ")
}

// mutatePod runs c's Mutate on a create of pod and returns the result.
func mutatePod(t *testing.T, c *Chain, pod *corev1.Pod) (*corev1.Pod, error) {
	t.Helper()
	a := podAttributes(admissionv1.Create, pod)
	_, err := c.Mutate(context.Background(), a)
	if err != nil {
		return nil, err
	}
	out, ok := a.Object.(*corev1.Pod)
	if !ok {
		t.Fatalf("Mutate made a %T of a pod", a.Object)
	}
	return out, nil
}

// TestMutatingPolicyApplyConfiguration checks that an apply
// configuration is merged as server-side apply merges: a label added to
// the others, a container's field set in the container of that name
// (containers are a list keyed by name), the rest kept.
func TestMutatingPolicyApplyConfiguration(t *testing.T) {
	p, b := mutatingPolicy("owner", applyConfig(`Object{
		metadata: Object.metadata{labels: {"owner": "team-" + object.metadata.name}},
		spec: Object.spec{containers: [Object.spec.containers{name: "side", imagePullPolicy: "Always"}]}
	}`))
	c := chainWith(Config{}, p, b)
	got, err := mutatePod(t, c, testPod())
	if err != nil {
		t.Fatalf("Mutate = %v", err)
	}
	want := testPod()
	want.Labels["owner"] = "team-web"
	want.Spec.Containers[1].ImagePullPolicy = corev1.PullAlways
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mutated pod (-want +got):\n%s", diff)
	}
}

// TestMutatingPolicyApplyConfigurationAtomic checks that an apply
// configuration may not set an atomic list (a container's command),
// which would drop what it does not name: failurePolicy Fail denies.
func TestMutatingPolicyApplyConfigurationAtomic(t *testing.T) {
	p, b := mutatingPolicy("command", applyConfig(`Object{spec: Object.spec{containers: [Object.spec.containers{name: "main", command: ["sh"]}]}}`))
	_, err := mutatePod(t, chainWith(Config{}, p, b), testPod())
	if !isPolicyDenial(err, "command") || !strings.Contains(err.Error(), "atomic") {
		t.Errorf("Mutate = %v, want 403 for the atomic list", err)
	}
}

// TestMutatingPolicyJSONPatch checks a JSONPatch that adds an env var to
// a container, one that adds a label whose key needs escaping, that a
// failed test operation leaves the object unchanged, and that the patch
// sees the object's kind.
func TestMutatingPolicyJSONPatch(t *testing.T) {
	p, b := mutatingPolicy("env",
		jsonPatch(`[JSONPatch{op: "add", path: "/spec/containers/0/env/-", value: Object.spec.containers.env{name: "POD", value: object.metadata.name}}]`),
		jsonPatch(`[JSONPatch{op: "add", path: "/metadata/labels/" + jsonpatch.escapeKey("example.com/patched"), value: "yes"}]`),
		jsonPatch(`[JSONPatch{op: "test", path: "/metadata/name", value: "other"}, JSONPatch{op: "remove", path: "/metadata/labels"}]`),
		jsonPatch(`[JSONPatch{op: "test", path: "/kind", value: "Pod"}, JSONPatch{op: "add", path: "/metadata/annotations", value: {"kind": "tested"}}]`),
	)
	got, err := mutatePod(t, chainWith(Config{}, p, b), testPod())
	if err != nil {
		t.Fatalf("Mutate = %v", err)
	}
	want := testPod()
	want.Spec.Containers[0].Env = append(want.Spec.Containers[0].Env, corev1.EnvVar{Name: "POD", Value: "web"})
	want.Labels["example.com/patched"] = "yes"
	want.Annotations = map[string]string{"kind": "tested"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mutated pod (-want +got):\n%s", diff)
	}
}

// TestMutatingPolicyMatching checks that matchConditions, the binding's
// matchResources and the operation decide whether a policy applies.
func TestMutatingPolicyMatching(t *testing.T) {
	p, b := mutatingPolicy("label", applyConfig(`Object{metadata: Object.metadata{labels: {"mutated": "yes"}}}`))
	p.Spec.MatchConditions = []admissionregistrationv1.MatchCondition{
		{Name: "not-skipped", Expression: `!("skip" in object.metadata.labels)`},
	}
	b.Spec.MatchResources = &admissionregistrationv1.MatchResources{ObjectSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}},
	}}
	c := chainWith(Config{}, p, b)
	tests := []struct {
		name   string
		labels map[string]string
		op     admissionv1.Operation
		want   bool
	}{
		{"matched", map[string]string{"app": "web"}, admissionv1.Create, true},
		{"update", map[string]string{"app": "web"}, admissionv1.Update, true},
		{"condition false", map[string]string{"app": "web", "skip": ""}, admissionv1.Create, false},
		{"binding selector", map[string]string{"other": "web"}, admissionv1.Create, false},
		{"connect", map[string]string{"app": "web"}, admissionv1.Connect, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod()
			pod.Labels = tc.labels
			a := podAttributes(tc.op, pod)
			if _, err := c.Mutate(context.Background(), a); err != nil {
				t.Fatalf("Mutate = %v", err)
			}
			if got := a.Object.(*corev1.Pod).Labels["mutated"] == "yes"; got != tc.want {
				t.Errorf("mutated = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMutatingPolicyParams checks that a binding's paramRef gives the
// policy its params (by name, by selector: once per object), and what
// parameterNotFoundAction does when there are none.
func TestMutatingPolicyParams(t *testing.T) {
	params := configMapParams{
		"default/owners": {ObjectMeta: metav1.ObjectMeta{Name: "owners", Namespace: "default", Labels: map[string]string{"kind": "owner"}},
			Data: map[string]string{"owner": "team-a"}},
		"other/owners": {ObjectMeta: metav1.ObjectMeta{Name: "owners", Namespace: "other"}, Data: map[string]string{"owner": "team-b"}},
	}
	p, _ := mutatingPolicy("owner",
		applyConfig(`Object{metadata: Object.metadata{labels: {"owner": variables.owner}}}`),
		jsonPatch(`[JSONPatch{op: "add", path: "/spec/containers/0/env/-", value: {"name": "OWNER", "value": params.data.owner}}]`))
	p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
	p.Spec.Variables = []admissionregistrationv1.Variable{{Name: "owner", Expression: "params.data.owner"}}
	binding := func(ref admissionregistrationv1.ParamRef) *admissionregistrationv1.MutatingAdmissionPolicyBinding {
		return &admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "owner"},
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "owner", ParamRef: &ref}}
	}
	deny, allow := ptr.To(admissionregistrationv1.DenyAction), ptr.To(admissionregistrationv1.AllowAction)
	tests := []struct {
		name    string
		ref     admissionregistrationv1.ParamRef
		owner   string   // the label; "" none
		env     []string // OWNER values added
		wantErr bool
	}{
		{"name", admissionregistrationv1.ParamRef{Name: "owners", ParameterNotFoundAction: deny}, "team-a", []string{"team-a"}, false},
		{"namespace", admissionregistrationv1.ParamRef{Name: "owners", Namespace: "other", ParameterNotFoundAction: deny}, "team-b", []string{"team-b"}, false},
		{"selector", admissionregistrationv1.ParamRef{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"kind": "owner"}},
			ParameterNotFoundAction: deny}, "team-a", []string{"team-a"}, false},
		{"missing, allow", admissionregistrationv1.ParamRef{Name: "nobody", ParameterNotFoundAction: allow}, "", nil, false},
		{"missing, deny", admissionregistrationv1.ParamRef{Name: "nobody", ParameterNotFoundAction: deny}, "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := chainWith(Config{Params: params}, p, binding(tc.ref))
			got, err := mutatePod(t, c, testPod())
			if tc.wantErr {
				if !isPolicyDenial(err, "owner") {
					t.Errorf("Mutate = %v, want 403 naming the policy", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Mutate = %v", err)
			}
			if got.Labels["owner"] != tc.owner {
				t.Errorf("owner label = %q, want %q", got.Labels["owner"], tc.owner)
			}
			var env []string
			for _, e := range got.Spec.Containers[0].Env[1:] {
				env = append(env, e.Value)
			}
			if diff := cmp.Diff(tc.env, env); diff != "" {
				t.Errorf("OWNER env (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMutatingPolicyFailurePolicy checks that a mutation that fails to
// evaluate denies the request (403 naming the policy) under Fail, and is
// skipped under Ignore, the mutations after it still applied.
func TestMutatingPolicyFailurePolicy(t *testing.T) {
	for _, fp := range []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail, admissionregistrationv1.Ignore} {
		t.Run(string(fp), func(t *testing.T) {
			p, b := mutatingPolicy("broken",
				applyConfig(`Object{metadata: Object.metadata{labels: {"x": object.spec.nodeName}}}`), // no nodeName: an error
				applyConfig(`Object{metadata: Object.metadata{labels: {"after": "yes"}}}`))
			p.Spec.FailurePolicy = &fp
			got, err := mutatePod(t, chainWith(Config{}, p, b), testPod())
			if fp == admissionregistrationv1.Fail {
				if !isPolicyDenial(err, "broken") || !strings.Contains(err.Error(), "denied request: mutations[0]: ") {
					t.Errorf("Mutate = %v, want 403 naming the policy and its mutation", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Mutate = %v, want the failure ignored", err)
			}
			if _, ok := got.Labels["x"]; ok || got.Labels["after"] != "yes" {
				t.Errorf("labels = %v, want after=yes and no x", got.Labels)
			}
		})
	}
}

// TestMutatingPolicyBroken checks that a policy that cannot be compiled
// (stored before a change of rules) is decided by its failurePolicy on
// the requests it matches, and ignores the others.
func TestMutatingPolicyBroken(t *testing.T) {
	p, b := mutatingPolicy("broken", applyConfig(`Object{`))
	c := chainWith(Config{}, p, b)
	if _, err := mutatePod(t, c, testPod()); !isPolicyDenial(err, "broken") {
		t.Errorf("Mutate of a pod = %v, want 403", err)
	}
	if _, err := c.Mutate(context.Background(), configMapAttributes(admissionv1.Create, false)); err != nil {
		t.Errorf("Mutate of a ConfigMap = %v, want nothing to do", err)
	}
}

// TestMutatingPolicyReinvocation checks that a policy with
// reinvocationPolicy IfNeeded runs again when a later policy changed the
// object, and one with Never does not.
func TestMutatingPolicyReinvocation(t *testing.T) {
	for _, rp := range []admissionregistrationv1.ReinvocationPolicyType{admissionregistrationv1.IfNeededReinvocationPolicy, admissionregistrationv1.NeverReinvocationPolicy} {
		t.Run(string(rp), func(t *testing.T) {
			first, fb := mutatingPolicy("a-first", applyConfig(
				`"b" in object.metadata.labels ? Object{metadata: Object.metadata{labels: {"a-saw-b": "yes"}}} : Object{}`))
			first.Spec.ReinvocationPolicy = rp
			second, sb := mutatingPolicy("b-second", applyConfig(`Object{metadata: Object.metadata{labels: {"b": "yes"}}}`))
			got, err := mutatePod(t, chainWith(Config{}, first, fb, second, sb), testPod())
			if err != nil {
				t.Fatalf("Mutate = %v", err)
			}
			if saw := got.Labels["a-saw-b"] == "yes"; saw != (rp == admissionregistrationv1.IfNeededReinvocationPolicy) || got.Labels["b"] != "yes" {
				t.Errorf("labels = %v with reinvocationPolicy %s", got.Labels, rp)
			}
		})
	}
}

// TestMutatingPolicyBeforeWebhooks checks that a mutating webhook sees
// the object the policies mutated.
func TestMutatingPolicyBeforeWebhooks(t *testing.T) {
	ca, cert := servingCert(t, "127.0.0.1")
	got := make(chan *admissionv1.AdmissionReview, 1)
	srv := reviewServer(t, cert, admissionv1.AdmissionResponse{Allowed: true}, got)
	url := srv.URL + "/m"
	none := admissionregistrationv1.SideEffectClassNone
	hooks := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "hook"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "hook.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
		}},
	}
	p, b := mutatingPolicy("label", applyConfig(`Object{metadata: Object.metadata{labels: {"policy": "yes"}}}`))
	if _, err := mutatePod(t, chainWith(Config{}, p, b, hooks), testPod()); err != nil {
		t.Fatalf("Mutate = %v", err)
	}
	review := <-got
	if !strings.Contains(string(review.Request.Object.Raw), `"policy":"yes"`) {
		t.Errorf("the webhook got %s, want the policy's label", review.Request.Object.Raw)
	}
}
