package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// contentTypes records the status and media type of every response a
// client gets.
type contentTypes struct {
	mu  sync.Mutex
	got []response
}

type response struct {
	method, path string
	code         int
	mediaType    string
}

func (c *contentTypes) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		if err == nil {
			mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			c.mu.Lock()
			c.got = append(c.got, response{r.Method, r.URL.Path, resp.StatusCode, mt})
			c.mu.Unlock()
		}
		return resp, err
	})
}

func (c *contentTypes) list() []response {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]response(nil), c.got...)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// protobufClient is a client-go clientset that sends and asks for protobuf,
// as the loopback clients do, recording the media types it gets back.
func protobufClient(t *testing.T, ts *testServer) (*kubernetes.Clientset, *contentTypes) {
	t.Helper()
	ct := &contentTypes{}
	cs, err := kubernetes.NewForConfig(&rest.Config{
		Host: ts.url, QPS: -1,
		ContentConfig: rest.ContentConfig{ContentType: protobufType, AcceptContentTypes: protobufType + ",application/json"},
		WrapTransport: ct.wrap,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs, ct
}

func TestProtobufClientCRUD(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	cs, seen := protobufClient(t, ts)
	pods := cs.CoreV1().Pods("default")
	created, err := pods.Create(ctx, testPod("a", map[string]string{"app": "x"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.Spec.RestartPolicy != corev1.RestartPolicyAlways || created.Labels["app"] != "x" {
		t.Errorf("created pod: uid %q rv %q restartPolicy %q labels %v; want them set", created.UID, created.ResourceVersion, created.Spec.RestartPolicy, created.Labels)
	}
	got, err := pods.Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.UID != created.UID || got.ResourceVersion != created.ResourceVersion || got.Spec.Containers[0].Image != "busybox:1.36" {
		t.Errorf("Get = uid %q rv %q image %q; want %q %q busybox:1.36", got.UID, got.ResourceVersion, got.Spec.Containers[0].Image, created.UID, created.ResourceVersion)
	}
	got.Labels["app"] = "y"
	updated, err := pods.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if updated.Labels["app"] != "y" || updated.ResourceVersion == got.ResourceVersion {
		t.Errorf("Update = labels %v rv %q; want app=y and a new rv", updated.Labels, updated.ResourceVersion)
	}
	if _, err := pods.Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("Update at a stale resourceVersion: %v, want Conflict", err)
	}
	updated.Status.Phase = corev1.PodRunning
	st, err := pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	if st.Status.Phase != corev1.PodRunning {
		t.Errorf("UpdateStatus phase = %q, want Running", st.Status.Phase)
	}
	patched, err := pods.Patch(ctx, "a", types.MergePatchType, []byte(`{"metadata":{"labels":{"tier":"web"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("Patch: %v", err)
	}
	if patched.Labels["tier"] != "web" || patched.Labels["app"] != "y" {
		t.Errorf("Patch labels = %v, want app=y tier=web", patched.Labels)
	}
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "a" || list.ResourceVersion == "" {
		t.Errorf("List = %d items, rv %q; want pod a and a list rv", len(list.Items), list.ResourceVersion)
	}
	svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create service: %v", err)
	}
	if svc.Spec.ClusterIP == "" {
		t.Errorf("service has no clusterIP")
	}
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := pods.Get(ctx, "a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get after Delete: %v, want NotFound", err)
	}
	// Objects and lists come in protobuf; errors (the stale update, the
	// last Get) are JSON Status objects; both decode above.
	var objects, errs int
	for _, r := range seen.list() {
		want := protobufType
		if r.code >= 400 {
			want, errs = "application/json", errs+1
		} else {
			objects++
		}
		if r.mediaType != want {
			t.Errorf("%s %s: %d %s, want %s", r.method, r.path, r.code, r.mediaType, want)
		}
	}
	if objects != 8 || errs != 2 {
		t.Errorf("%d object and %d error responses, want 8 and 2", objects, errs)
	}
}

// TestProtobufWatch watches pods in protobuf unfiltered, by field and by
// label selector, and in JSON: all see the same changes.
func TestProtobufWatch(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	cs, seen := protobufClient(t, ts)
	pods := cs.CoreV1().Pods("default")
	pre, err := pods.Create(ctx, testPod("pre", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	watchers := map[string]watch.Interface{}
	for name, c := range map[string]struct {
		cs   kubernetes.Interface
		opts metav1.ListOptions
	}{
		"protobuf":        {cs, metav1.ListOptions{ResourceVersion: pre.ResourceVersion}},
		"protobuf-field":  {cs, metav1.ListOptions{ResourceVersion: pre.ResourceVersion, FieldSelector: "metadata.name=a"}},
		"protobuf-labels": {cs, metav1.ListOptions{ResourceVersion: pre.ResourceVersion, LabelSelector: "app=x"}},
		"json":            {ts.client, metav1.ListOptions{ResourceVersion: pre.ResourceVersion}},
	} {
		w, err := c.cs.CoreV1().Pods("default").Watch(ctx, c.opts)
		if err != nil {
			t.Fatalf("Watch %s: %v", name, err)
		}
		defer w.Stop()
		watchers[name] = w
	}
	for _, r := range seen.list() {
		if r.method == "GET" && r.mediaType != protobufType {
			t.Errorf("protobuf watch of %s answered in %s", r.path, r.mediaType)
		}
	}
	a, err := pods.Create(ctx, testPod("a", map[string]string{"app": "x"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := pods.Create(ctx, testPod("b", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	a.Labels["app"] = "z"
	a, err = pods.Update(ctx, a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := map[string][]string{
		"protobuf":        {"ADDED a", "ADDED b", "MODIFIED a app=z", "DELETED a app=z"},
		"json":            {"ADDED a", "ADDED b", "MODIFIED a app=z", "DELETED a app=z"},
		"protobuf-field":  {"ADDED a", "MODIFIED a app=z", "DELETED a app=z"},
		"protobuf-labels": {"ADDED a", "DELETED a app=z"}, // a leaves the selection
	}
	for name, w := range watchers {
		for i, wantEv := range want[name] {
			ev := nextEvent(t, w)
			got := eventName(ev)
			if p, ok := ev.Object.(*corev1.Pod); ok && p.Labels["app"] != "x" && p.Labels["app"] != "" {
				got += " app=" + p.Labels["app"]
			}
			if got != wantEv {
				t.Errorf("%s watch event %d = %s, want %s", name, i, got, wantEv)
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && (p.ResourceVersion == "" || p.UID == "" || p.Spec.Containers[0].Image != "busybox:1.36") {
				t.Errorf("%s watch event %d: pod rv %q uid %q; want a whole pod", name, i, p.ResourceVersion, p.UID)
			}
		}
	}
}

// TestProtobufWatchInitialEvents: the streaming list protobuf clients use
// ends with the initial-events bookmark, and an expired watch ends with an
// Error event client-go decodes.
func TestProtobufWatchInitialEvents(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	cs, _ := protobufClient(t, ts)
	pods := cs.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, testPod("a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	yes := true
	w, err := pods.Watch(ctx, metav1.ListOptions{
		SendInitialEvents: &yes, AllowWatchBookmarks: true,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	if got := eventName(nextEvent(t, w)); got != "ADDED a" {
		t.Errorf("first event %s, want ADDED a", got)
	}
	ev := nextEvent(t, w)
	p, _ := ev.Object.(*corev1.Pod)
	if ev.Type != watch.Bookmark || p == nil || p.Annotations[metav1.InitialEventsAnnotationKey] != "true" || p.ResourceVersion == "" {
		t.Errorf("second event %s %#v, want the initial-events-end BOOKMARK with a resourceVersion", ev.Type, ev.Object)
	}
	rev, _ := ts.store.CurrentRevision(ctx)
	for i := 0; i < 2; i++ {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{GenerateName: "s"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	if err := ts.store.Compact(ctx, rev+1); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	old, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer old.Stop()
	ev = nextEvent(t, old)
	st, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || st.Code != http.StatusGone {
		t.Errorf("watch from a compacted revision: %s %#v, want an Error event with a 410 Status", ev.Type, ev.Object)
	}
}

// TestProtobufAccept: protobuf is served to clients that list it first,
// JSON to the others, and tables stay JSON.
func TestProtobufAccept(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("web", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	tests := []struct {
		accept, path, want string
	}{
		{protobufType, "/api/v1/namespaces/default/pods/web", protobufType},
		{protobufType + ",application/json", "/api/v1/namespaces/default/pods", protobufType},
		{"application/json," + protobufType, "/api/v1/namespaces/default/pods/web", "application/json"},
		{protobufType + ";as=Table;g=meta.k8s.io;v=v1,application/json;as=Table;g=meta.k8s.io;v=v1,application/json", "/api/v1/namespaces/default/pods", "application/json"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest("GET", ts.url+tc.path, nil)
		req.Header.Set("Accept", tc.accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != http.StatusOK || mt != tc.want {
			t.Errorf("GET %s Accept %s = %d %s, want 200 %s", tc.path, tc.accept, resp.StatusCode, mt, tc.want)
			continue
		}
		switch {
		case mt == protobufType && !bytes.HasPrefix(data, []byte("k8s\x00")):
			t.Errorf("GET %s: protobuf body without the k8s envelope: %q", tc.path, data[:min(len(data), 16)])
		case strings.Contains(tc.accept, "as=Table"):
			var tbl metav1.Table
			if err := json.Unmarshal(data, &tbl); err != nil || tbl.Kind != "Table" {
				t.Errorf("GET %s Accept %s: %v kind %q, want a JSON Table", tc.path, tc.accept, err, tbl.Kind)
			}
		}
	}
}

func TestRevCache(t *testing.T) {
	c := newRevCache(DefaultCacheBytes, bytesLen)
	encodes := 0
	get := func(key string, rev int64) []byte {
		t.Helper()
		data, err := c.get(key, rev, func() ([]byte, error) {
			encodes++
			return []byte(key), nil
		})
		if err != nil || string(data) != key {
			t.Fatalf("get(%s, %d) = %q, %v", key, rev, data, err)
		}
		return data
	}
	get("a", 1)
	get("a", 1)
	get("a", 2)
	if encodes != 2 {
		t.Errorf("%d encodes for a@1 twice and a@2, want 2", encodes)
	}
	for i := range revCacheSize {
		get("b", int64(i))
	}
	encodes = 0
	get("a", 1) // evicted by the b's
	get("b", revCacheSize-1)
	if encodes != 1 {
		t.Errorf("%d encodes for an evicted and a recent change, want 1", encodes)
	}
	failing := errors.New("undecodable")
	if _, err := c.get("c", 1, func() ([]byte, error) { return nil, failing }); !errors.Is(err, failing) {
		t.Errorf("get with a failing encode: %v, want %v", err, failing)
	}
	get("c", 1) // a failure is not cached
}
