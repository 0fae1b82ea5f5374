package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik-dev/minik/server/auth"

	"github.com/minik-dev/minik/server/internal/proxyprefix"
)

// recordingStreams stands in for the node side: it records what it is
// handed and answers 200 "SUB POD PATH".
type recordingStreams struct{}

func (recordingStreams) ServePodSubresource(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, sub string) {
	io.WriteString(w, sub+" "+pod.Name+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
	if p := proxyprefix.From(r.Context()); p != "" {
		io.WriteString(w, " links via "+p)
	}
}

// recordingAuthz allows everything and records the attributes.
type recordingAuthz struct {
	mu    sync.Mutex
	attrs []auth.Attributes
}

func (a *recordingAuthz) Authorize(_ context.Context, _ auth.User, at auth.Attributes) (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attrs = append(a.attrs, at)
	return true, ""
}

func (a *recordingAuthz) last() auth.Attributes {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attrs[len(a.attrs)-1]
}

func send(t *testing.T, method, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyRoutes(t *testing.T) {
	ts := newTestServer(t)
	az := &recordingAuthz{}
	ts.cfg.PodStreams, ts.cfg.Authorizer = recordingStreams{}, az
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("web", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "front"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
		{Name: "admin", Port: 81, TargetPort: intstr.FromInt32(9090)},
	}}}
	if _, err := ts.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc.Name = "empty"
	if _, err := ts.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "front"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5", TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080}, {Name: "admin", Port: 9090}},
	}}}
	if _, err := ts.client.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := ts.url + "/api/v1/namespaces/default/"
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
		verb, sub    string
	}{
		// A GET without a path is redirected to "proxy/" (the client follows).
		{"GET", "pods/web/proxy?m=1", 200, "proxy web /api/v1/namespaces/default/pods/web/proxy/?m=1", "get", "proxy"},
		{"GET", "services/front:http/proxy", 200, "proxy web /api/v1/namespaces/default/pods/http:web:8080/proxy/?", "get", "proxy"},
		{"POST", "pods/https:web:8443/proxy/a/b%2Fc?x=1", 200, "proxy web /api/v1/namespaces/default/pods/https:web:8443/proxy/a/b%2Fc?x=1", "create", "proxy"},
		{"OPTIONS", "pods/web:80/proxy/", 200, "proxy web ", "get", "proxy"},
		{"PATCH", "pods/web:80/proxy/", 200, "proxy web ", "patch", "proxy"},
		{"DELETE", "pods/web:80/proxy/", 200, "proxy web ", "delete", "proxy"},
		{"POST", "pods/web/portforward", 200, "portforward web ", "create", "portforward"},
		{"GET", "services/front:http/proxy/x%2Fy?q=1", 200, "proxy web /api/v1/namespaces/default/pods/http:web:8080/proxy/x%2Fy?q=1", "get", "proxy"},
		{"GET", "services/front:http/proxy/page", 200, "links via /api/v1/namespaces/default/services/front:http/proxy", "get", "proxy"},
		{"PUT", "services/https:front:81/proxy", 200, "proxy web /api/v1/namespaces/default/pods/https:web:9090/proxy?", "update", "proxy"},
		{"GET", "services/front/proxy/", 503, `no service port`, "get", "proxy"},
		{"GET", "services/empty:http/proxy/", 503, "no endpoints available", "get", "proxy"},
		{"GET", "services/missing/proxy/", 404, "not found", "get", "proxy"},
		{"GET", "pods/missing:80/proxy/", 404, "not found", "get", "proxy"},
		{"GET", "pods/ftp:web:80/proxy/", 400, "invalid proxy target", "get", "proxy"},
	} {
		code, body := send(t, tc.method, ns+tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, code, body, tc.code, tc.body)
		}
		if a := az.last(); a.Verb != tc.verb || a.Subresource != tc.sub {
			t.Errorf("%s %s authorized as %s %s/%s, want %s %s", tc.method, tc.path, a.Verb, a.Resource, a.Subresource, tc.verb, tc.sub)
		}
	}
}

func TestNodeProxy(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	if _, err := ts.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	base := ts.url + "/api/v1/nodes/"
	if code, body := send(t, "GET", base+"n1/proxy/healthz"); code != 503 || !strings.Contains(body, "not ready") {
		t.Errorf("healthz of a node not ready = %d %s, want 503", code, body)
	}
	n, err := ts.client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err := ts.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"n1/proxy/healthz", 200, "ok"},
		{"n1:10250/proxy/healthz", 200, "ok"},
		{"n1/proxy/logs/", 404, "not found"},
		{"n2/proxy/healthz", 404, "not found"},
	} {
		if code, body := send(t, "GET", base+tc.path); code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.body)
		}
	}
}

// TestScaleRCPatch patches an RC's scale as kubectl scale does.
func TestScaleRCPatch(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	one := int32(1)
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ReplicationControllerSpec{
		Replicas: &one, Selector: map[string]string{"app": "web"},
		Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: testPod("", nil).Spec},
	}}
	if _, err := ts.client.CoreV1().ReplicationControllers("default").Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, err := ts.client.CoreV1().RESTClient().Patch(types.MergePatchType).Namespace("default").
		Resource("replicationcontrollers").Name("web").SubResource("scale").
		Body([]byte(`{"spec":{"replicas":3}}`)).DoRaw(ctx)
	if err != nil {
		t.Fatalf("PATCH scale: %v", err)
	}
	var sc autoscalingv1.Scale
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Kind != "Scale" || sc.APIVersion != "autoscaling/v1" || sc.Spec.Replicas != 3 {
		t.Errorf("PATCH scale = %s %s replicas %d, want autoscaling/v1 Scale with 3", sc.APIVersion, sc.Kind, sc.Spec.Replicas)
	}
	got, err := ts.client.CoreV1().ReplicationControllers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || *got.Spec.Replicas != 3 {
		t.Errorf("RC after PATCH scale = %v, %v; want 3 replicas", got.Spec.Replicas, err)
	}
}

func TestDiscoveryListsConnectSubresources(t *testing.T) {
	ts := newTestServer(t)
	list, err := ts.client.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, r := range list.APIResources {
		have[r.Name] = strings.Join(r.Verbs, ",")
	}
	for name, verbs := range map[string]string{
		"pods/proxy": "create,delete,get,patch,update", "services/proxy": "create,delete,get,patch,update",
		"nodes/proxy": "create,delete,get,patch,update", "pods/portforward": "create,get",
		"pods/attach": "create,get", "pods/exec": "create,get", "pods/log": "get",
		"replicationcontrollers/scale": "get,patch,update",
	} {
		if have[name] != verbs {
			t.Errorf("discovery %s verbs = %q, want %q", name, have[name], verbs)
		}
	}
}
