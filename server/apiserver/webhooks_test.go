package apiserver

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// reviewFunc answers one AdmissionReview request.
type reviewFunc func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

// hookServer is an HTTPS webhook server answering with fn; it records
// the requests it answered.
type hookServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*admissionv1.AdmissionRequest // guarded by mu
}

func newHookServer(t *testing.T, fn reviewFunc) *hookServer {
	t.Helper()
	h := &hookServer{}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, review.Request)
		h.mu.Unlock()
		resp := fn(review.Request)
		if resp == nil {
			return // the handler wrote nothing: a broken webhook
		}
		resp.UID = review.Request.UID
		review.Response, review.Request = resp, nil
		json.NewEncoder(w).Encode(&review)
	}))
	t.Cleanup(h.Close)
	return h
}

// requests returns what h was sent.
func (h *hookServer) requests() []*admissionv1.AdmissionRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*admissionv1.AdmissionRequest(nil), h.reqs...)
}

// clientConfig points at h with its certificate as the caBundle.
func (h *hookServer) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	u := h.URL + path
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw})
	return admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: ca}
}

func allow() *admissionv1.AdmissionResponse { return &admissionv1.AdmissionResponse{Allowed: true} }

func deny(code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: code, Message: msg}}
}

// configMapRule matches the operations ops on configmaps.
func configMapRule(ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: ops,
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
	}}
}

func validatingHook(name string, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name: name, ClientConfig: cc, Rules: rules,
		SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"},
	}
}

// addValidating stores a configuration and waits until the server has
// it in force.
func (ts *testServer) addValidating(t *testing.T, name string, hooks ...admissionregistrationv1.ValidatingWebhook) {
	t.Helper()
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks}
	if _, err := ts.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(testContext(t), c, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ValidatingWebhookConfiguration: %v", err)
	}
	ts.waitAdmission(t, "/registry/validatingwebhookconfigurations/"+name)
}

func (ts *testServer) addMutating(t *testing.T, name string, hooks ...admissionregistrationv1.MutatingWebhook) {
	t.Helper()
	c := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks}
	if _, err := ts.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(testContext(t), c, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
	ts.waitAdmission(t, "/registry/mutatingwebhookconfigurations/"+name)
}

// waitAdmission waits until the admission cache holds key, which its
// watch delivers shortly after the write.
func (ts *testServer) waitAdmission(t *testing.T, key string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts.admissionCache.mu.Lock()
		_, ok := ts.admissionCache.objs[key]
		ready := ts.admissionCache.ready
		ts.admissionCache.mu.Unlock()
		if ok && ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("admission cache never held %s", key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func configMap(ns, name string, labels map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

func TestValidatingWebhookAllowsAndDenies(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	hook := newHookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		if req.Name == "bad" {
			return deny(0, "bad is not a good name")
		}
		if req.Name == "teapot" {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 418, Reason: "Teapot", Message: "short and stout"}}
		}
		return allow()
	})
	ts.addValidating(t, "names", validatingHook("names.example.com", hook.clientConfig("/validate"),
		configMapRule(admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete)))
	cms := ts.client.CoreV1().ConfigMaps("default")

	if _, err := cms.Create(ctx, configMap("default", "good", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create good: %v", err)
	}
	_, err := cms.Create(ctx, configMap("default", "bad", nil), metav1.CreateOptions{})
	want := `admission webhook "names.example.com" denied the request: bad is not a good name`
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("create bad = %v, want 403 %q", err, want)
	}
	if _, err := cms.Get(ctx, "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get bad after denial = %v, want NotFound", err)
	}
	_, err = cms.Create(ctx, configMap("default", "teapot", nil), metav1.CreateOptions{})
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != 418 || se.ErrStatus.Reason != "Teapot" {
		t.Errorf("create teapot = %#v, want the webhook's code 418 and reason", err)
	}

	cm, _ := cms.Get(ctx, "good", metav1.GetOptions{})
	cm.Data = map[string]string{"a": "b"}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update good: %v", err)
	}
	if err := cms.Delete(ctx, "good", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete good: %v", err)
	}

	var ops []string
	for _, r := range hook.requests() {
		ops = append(ops, fmt.Sprintf("%s %s/%s", r.Operation, r.Namespace, r.Name))
	}
	wantOps := []string{"CREATE default/good", "CREATE default/bad", "CREATE default/teapot", "UPDATE default/good", "DELETE default/good"}
	if strings.Join(ops, ",") != strings.Join(wantOps, ",") {
		t.Errorf("webhook saw %v, want %v", ops, wantOps)
	}
	reqs := hook.requests()
	upd := reqs[3]
	if upd.Kind.Kind != "ConfigMap" || upd.Resource.Resource != "configmaps" || upd.UserInfo.Username != "system:admin" ||
		len(upd.Object.Raw) == 0 || len(upd.OldObject.Raw) == 0 || !strings.Contains(string(upd.Object.Raw), `"a":"b"`) {
		t.Errorf("update review = %+v", upd)
	}
	if del := reqs[4]; len(del.Object.Raw) != 0 || len(del.OldObject.Raw) == 0 {
		t.Errorf("delete review object %q old %q, want only the old object", del.Object.Raw, del.OldObject.Raw)
	}
}

func TestMutatingWebhookPatchesAndReinvokes(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	var firstCalls atomic.Int32
	labelPatch := func(key string) []byte {
		return []byte(fmt.Sprintf(`[{"op":"add","path":"/metadata/labels/%s","value":"yes"}]`, key))
	}
	// first adds a label if missing and runs again when a later webhook
	// changed the object; second adds another label.
	first := newHookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		firstCalls.Add(1)
		var cm corev1.ConfigMap
		json.Unmarshal(req.Object.Raw, &cm)
		if cm.Labels["first"] == "yes" {
			return allow()
		}
		return &admissionv1.AdmissionResponse{Allowed: true, Patch: labelPatch("first"), PatchType: ptr.To(admissionv1.PatchTypeJSONPatch),
			Warnings: []string{"first was here"}}
	})
	second := newHookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Allowed: true, Patch: labelPatch("second"), PatchType: ptr.To(admissionv1.PatchTypeJSONPatch)}
	})
	mk := func(name string, h *hookServer, p admissionregistrationv1.ReinvocationPolicyType) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name: name, ClientConfig: h.clientConfig("/mutate"), Rules: configMapRule(admissionregistrationv1.Create),
			SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy: &p,
		}
	}
	ts.addMutating(t, "a-labels", mk("first.example.com", first, admissionregistrationv1.IfNeededReinvocationPolicy))
	ts.addMutating(t, "b-labels", mk("second.example.com", second, admissionregistrationv1.NeverReinvocationPolicy))

	body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m","labels":{"own":"x"}}}`
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/v1/namespaces/default/configmaps", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create status %d", resp.StatusCode)
	}
	if w := resp.Header.Values("Warning"); len(w) != 1 || !strings.Contains(w[0], "first was here") {
		t.Errorf("Warning headers = %q, want the webhook's warning", w)
	}
	cm, err := ts.client.CoreV1().ConfigMaps("default").Get(ctx, "m", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels["first"] != "yes" || cm.Labels["second"] != "yes" || cm.Labels["own"] != "x" {
		t.Errorf("labels = %v, want own, first and second", cm.Labels)
	}
	// Called once, then again after second changed the object.
	if n := firstCalls.Load(); n != 2 {
		t.Errorf("first webhook called %d times, want 2 (reinvoked once)", n)
	}
}

func TestWebhookFailurePolicyAndTimeout(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	release := make(chan struct{})
	slow := newHookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		<-release
		return allow()
	})
	t.Cleanup(func() { close(release) })
	gone := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse { return allow() })
	goneCC := gone.clientConfig("/")
	gone.Close()

	match := func(prefix string) []admissionregistrationv1.MatchCondition {
		return []admissionregistrationv1.MatchCondition{{Name: "prefix", Expression: fmt.Sprintf("object.metadata.name.startsWith(%q)", prefix)}}
	}
	hook := func(name string, cc admissionregistrationv1.WebhookClientConfig, fp admissionregistrationv1.FailurePolicyType, prefix string) admissionregistrationv1.ValidatingWebhook {
		h := validatingHook(name, cc, configMapRule(admissionregistrationv1.Create))
		h.FailurePolicy, h.TimeoutSeconds, h.MatchConditions = &fp, ptr.To(int32(1)), match(prefix)
		return h
	}
	ts.addValidating(t, "failing",
		hook("gone-fail.example.com", goneCC, admissionregistrationv1.Fail, "gone-fail"),
		hook("gone-ignore.example.com", goneCC, admissionregistrationv1.Ignore, "gone-ignore"),
		hook("slow-fail.example.com", slow.clientConfig("/"), admissionregistrationv1.Fail, "slow-fail"),
		hook("slow-ignore.example.com", slow.clientConfig("/"), admissionregistrationv1.Ignore, "slow-ignore"))

	cms := ts.client.CoreV1().ConfigMaps("default")
	for _, tc := range []struct {
		name    string
		wantErr string
	}{
		{"gone-fail", `failed calling webhook "gone-fail.example.com"`},
		{"gone-ignore", ""},
		{"slow-fail", `failed calling webhook "slow-fail.example.com"`},
		{"slow-ignore", ""},
		{"other", ""}, // no matchCondition true: no webhook called
	} {
		_, err := cms.Create(ctx, configMap("default", tc.name, nil), metav1.CreateOptions{})
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("create %s: %v, want allowed", tc.name, err)
		case tc.wantErr != "" && (!apierrors.IsInternalError(err) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("create %s = %v, want 500 %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestWebhookSelectors(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	hook := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse { return deny(0, "selected") })
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "guarded", Labels: map[string]string{"guard": "on"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "open"}},
	} {
		if _, err := ts.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := validatingHook("selected.example.com", hook.clientConfig("/"), configMapRule(admissionregistrationv1.Create))
	h.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"guard": "on"}}
	h.ObjectSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "exempt", Operator: metav1.LabelSelectorOpDoesNotExist}}}
	ts.addValidating(t, "selectors", h)

	for _, tc := range []struct {
		ns, name string
		labels   map[string]string
		denied   bool
	}{
		{"guarded", "a", nil, true},
		{"guarded", "b", map[string]string{"exempt": "yes"}, false},
		{"open", "c", nil, false},
	} {
		_, err := ts.client.CoreV1().ConfigMaps(tc.ns).Create(ctx, configMap(tc.ns, tc.name, tc.labels), metav1.CreateOptions{})
		if got := apierrors.IsForbidden(err); got != tc.denied || (!tc.denied && err != nil) {
			t.Errorf("create %s/%s = %v, want denied %v", tc.ns, tc.name, err, tc.denied)
		}
	}
}

func TestWebhookDryRunAndPatchRequest(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	hook := newHookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		if req.DryRun == nil || !*req.DryRun {
			return deny(0, "only dry runs")
		}
		return allow()
	})
	h := validatingHook("dry.example.com", hook.clientConfig("/"), configMapRule(admissionregistrationv1.Create, admissionregistrationv1.Update))
	h.SideEffects = ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun)
	cms := ts.client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, configMap("default", "p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.addValidating(t, "dry", h)
	if _, err := cms.Create(ctx, configMap("default", "q", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("dry-run create: %v", err)
	}
	if _, err := cms.Create(ctx, configMap("default", "q", nil), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create = %v, want the webhook's denial", err)
	}
	_, err := cms.Patch(ctx, "p", types.MergePatchType, []byte(`{"data":{"k":"v"}}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("patch = %v, want the webhook's denial", err)
	}
	reqs := hook.requests()
	if last := reqs[len(reqs)-1]; last.Operation != admissionv1.Update || !strings.Contains(string(last.Object.Raw), `"k":"v"`) {
		t.Errorf("patch review: operation %s object %s", last.Operation, last.Object.Raw)
	}
}

func TestWebhookConfigurationsAreNotAdmitted(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	hook := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse { return deny(0, "everything") })
	all := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*/*"}},
	}}
	ts.addValidating(t, "deny-all", validatingHook("all.example.com", hook.clientConfig("/"), all))
	if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx, configMap("default", "x", nil), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create configmap = %v, want denied", err)
	}
	// The configuration itself stays repairable.
	if err := ts.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, "deny-all", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete the configuration: %v", err)
	}
}

func TestWebhookConfigurationValidation(t *testing.T) {
	ts := newTestServer(t)
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "bad.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://x.example.com")},
			AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: ptr.To(int32(31)),
		}},
	}
	_, err := ts.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(testContext(t), c, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("create = %v, want 422", err)
	}
	var fields []string
	for _, c := range err.(*apierrors.StatusError).ErrStatus.Details.Causes {
		fields = append(fields, c.Field)
	}
	want := "webhooks[0].sideEffects,webhooks[0].timeoutSeconds"
	if strings.Join(fields, ",") != want {
		t.Errorf("causes name %v, want %s", fields, want)
	}
}

func TestWebhookConnect(t *testing.T) {
	ts := newTestServer(t)
	hook := newHookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return deny(0, "no proxying to "+req.Name)
	})
	ts.addValidating(t, "connect", validatingHook("connect.example.com", hook.clientConfig("/"), []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Connect},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/proxy"}},
	}}))
	resp, err := http.Get(ts.url + "/api/v1/namespaces/default/pods/http:web:8080/proxy/index.html")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `denied the request: no proxying to web`) {
		t.Errorf("proxy = %d %s, want the webhook's 403", resp.StatusCode, body)
	}
	reqs := hook.requests()
	if len(reqs) != 1 {
		t.Fatalf("webhook called %d times, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Operation != admissionv1.Connect || r.Kind.Kind != "PodProxyOptions" || r.SubResource != "proxy" ||
		!strings.Contains(string(r.Object.Raw), `"path":"/index.html"`) {
		t.Errorf("review: %s %s/%s %s", r.Operation, r.Kind.Kind, r.SubResource, r.Object.Raw)
	}
}

// TestMutatedPodIsDefaulted checks that a container a mutating webhook
// adds to a new pod gets the defaults the client's own containers get.
func TestMutatedPodIsDefaulted(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	h := newHookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		patch := `[{"op":"add","path":"/spec/initContainers","value":[{"name":"injected","image":"busybox"}]}]`
		return &admissionv1.AdmissionResponse{Allowed: true, Patch: []byte(patch), PatchType: ptr.To(admissionv1.PatchTypeJSONPatch)}
	})
	ts.addMutating(t, "inject", admissionregistrationv1.MutatingWebhook{
		Name: "inject.example.com", ClientConfig: h.clientConfig("/mutate"),
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
		}},
		SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"},
	})
	pod, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("mutated", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(pod.Spec.InitContainers) != 1 {
		t.Fatalf("init containers = %v, want the injected one", pod.Spec.InitContainers)
	}
	c := pod.Spec.InitContainers[0]
	if c.ImagePullPolicy != corev1.PullAlways || c.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
		t.Errorf("injected container: pull policy %q, termination message policy %q; want Always, File", c.ImagePullPolicy, c.TerminationMessagePolicy)
	}
}
