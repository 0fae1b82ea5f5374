package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/minik-dev/minik/server/registry"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func testPod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "main", Image: "busybox:1.36", Command: []string{"sleep", "3600"}},
		}},
	}
}

func TestCreateGetDefaults(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	created, err := pods.Create(ctx, testPod("web", map[string]string{"app": "web"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.UID == "" || created.CreationTimestamp.IsZero() || created.ResourceVersion == "" {
		t.Errorf("Create = uid %q created %v rv %q, want all set", created.UID, created.CreationTimestamp, created.ResourceVersion)
	}
	if created.Namespace != "default" || created.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("Create = namespace %q restartPolicy %q, want default/Always", created.Namespace, created.Spec.RestartPolicy)
	}
	if created.Status.Phase != corev1.PodPending {
		t.Errorf("Create status.phase = %q, want Pending", created.Status.Phase)
	}
	got, err := pods.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("Get differs from Create (-want +got):\n%s", diff)
	}
	_, err = pods.Create(ctx, testPod("web", nil), metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		t.Errorf("second Create = %v, want AlreadyExists", err)
	}
	_, err = pods.Get(ctx, "nope", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("Get(nope) = %v, want NotFound", err)
	}
}

func TestCreateGenerateName(t *testing.T) {
	ts := newTestServer(t)
	p := testPod("", nil)
	p.GenerateName = "web-"
	got, err := ts.client.CoreV1().Pods("default").Create(testContext(t), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(got.Name, "web-") || len(got.Name) != len("web-")+5 {
		t.Errorf("generated name = %q, want web-XXXXX", got.Name)
	}
}

// rawRequest sends body to path and returns the status code and decoded
// Status (if the answer is one).
func rawRequest(t *testing.T, ts *testServer, method, path, contentType string, body []byte) (int, metav1.Status) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	json.Unmarshal(data, &st)
	return resp.StatusCode, st
}

func TestCreateRefusesBadInput(t *testing.T) {
	ts := newTestServer(t)
	big := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","annotations":{"a":%q}}}`, strings.Repeat("x", 3<<20))
	cases := []struct {
		name, path, body string
		code             int
		reason           metav1.StatusReason
		field            string // a cause must name it
	}{
		{"missing image", "/api/v1/namespaces/default/pods",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}`,
			422, metav1.StatusReasonInvalid, "spec.containers[0].image"},
		{"bad name", "/api/v1/namespaces/default/pods",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
			422, metav1.StatusReasonInvalid, "metadata.name"},
		{"wrong kind", "/api/v1/namespaces/default/pods",
			`{"apiVersion":"v1","kind":"Service","metadata":{"name":"p"}}`, 400, metav1.StatusReasonBadRequest, ""},
		{"wrong apiVersion", "/api/v1/namespaces/default/pods",
			`{"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"p"}}`, 400, metav1.StatusReasonBadRequest, ""},
		{"not json", "/api/v1/namespaces/default/pods", `{"apiVersion":`, 400, metav1.StatusReasonBadRequest, ""},
		{"too large", "/api/v1/namespaces/default/pods", big, 413, metav1.StatusReasonRequestEntityTooLarge, ""},
		{"no namespace", "/api/v1/namespaces/nope/pods",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
			404, metav1.StatusReasonNotFound, ""},
		{"namespace mismatch", "/api/v1/namespaces/default/pods",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"kube-system"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
			400, metav1.StatusReasonBadRequest, ""},
		{"service bad port", "/api/v1/namespaces/default/services",
			`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":70000}]}}`,
			422, metav1.StatusReasonInvalid, "spec.ports[0].port"},
		{"rc selector mismatch", "/api/v1/namespaces/default/replicationcontrollers",
			`{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"r"},"spec":{"selector":{"a":"b"},"template":{"metadata":{"labels":{"a":"c"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`,
			422, metav1.StatusReasonInvalid, "spec.template.metadata.labels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, st := rawRequest(t, ts, "POST", tc.path, "application/json", []byte(tc.body))
			if code != tc.code || st.Reason != tc.reason {
				t.Fatalf("POST = %d %q (%s), want %d %q", code, st.Reason, st.Message, tc.code, tc.reason)
			}
			if tc.field == "" {
				return
			}
			if st.Details == nil {
				t.Fatalf("Status has no details: %+v", st)
			}
			for _, c := range st.Details.Causes {
				if c.Field == tc.field {
					return
				}
			}
			t.Errorf("causes %+v name no field %q", st.Details.Causes, tc.field)
		})
	}
	list, err := ts.client.CoreV1().Pods("").List(testContext(t), metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("after refused creates: %d pods, err %v; want none", len(list.Items), err)
	}
}

func TestUpdateConflictAndStatus(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	p, err := pods.Create(ctx, testPod("web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	p1 := p.DeepCopy()
	p1.Labels = map[string]string{"v": "1"}
	if _, err := pods.Update(ctx, p1, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	p2 := p.DeepCopy() // stale resourceVersion
	p2.Labels = map[string]string{"v": "2"}
	if _, err := pods.Update(ctx, p2, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale Update = %v, want Conflict", err)
	}
	cur, _ := pods.Get(ctx, "web", metav1.GetOptions{})
	cur.Status.Phase = corev1.PodRunning
	cur.Spec.Containers[0].Image = "ignored-by-status"
	st, err := pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	if st.Status.Phase != corev1.PodRunning || st.Spec.Containers[0].Image != "busybox:1.36" {
		t.Errorf("UpdateStatus = phase %q image %q, want Running and the old image", st.Status.Phase, st.Spec.Containers[0].Image)
	}
	st.Status.Phase = corev1.PodFailed
	st.Labels["v"] = "3"
	up, err := pods.Update(ctx, st, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if up.Status.Phase != corev1.PodRunning || up.Labels["v"] != "3" {
		t.Errorf("Update = phase %q label %q, want status kept (Running) and label 3", up.Status.Phase, up.Labels["v"])
	}
}

func TestPatchTypes(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, testPod("web", map[string]string{"a": "1"}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	cases := []struct {
		name  string
		pt    types.PatchType
		patch string
		label string
	}{
		{"strategic", types.StrategicMergePatchType, `{"metadata":{"labels":{"a":"2"}}}`, "2"},
		{"merge", types.MergePatchType, `{"metadata":{"labels":{"a":"3"}}}`, "3"},
		{"json", types.JSONPatchType, `[{"op":"replace","path":"/metadata/labels/a","value":"4"}]`, "4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pods.Patch(ctx, "web", tc.pt, []byte(tc.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatalf("Patch: %v", err)
			}
			if got.Labels["a"] != tc.label {
				t.Errorf("Patch label a = %q, want %q", got.Labels["a"], tc.label)
			}
		})
	}
	_, err := pods.Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"resourceVersion":"1"}}`), metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("Patch with stale resourceVersion = %v, want Conflict", err)
	}
	_, err = pods.Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{"spec":{"containers":[{"name":"main","image":""}]}}`), metav1.PatchOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("Patch clearing the image = %v, want Invalid", err)
	}
	code, _ := rawRequest(t, ts, "PATCH", "/api/v1/namespaces/default/pods/web", "text/plain", []byte(`{}`))
	if code != http.StatusUnsupportedMediaType {
		t.Errorf("PATCH text/plain = %d, want 415", code)
	}
}

// A resource minik does not serve, and a subresource a resource does not
// have, are 404s that name the path, not a missing object.
func TestUnknownResourceNotFound(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	err := ts.client.CoreV1().RESTClient().Post().Namespace("default").Resource("nosuchthings").Body([]byte(`{}`)).Do(ctx).Error()
	if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "could not find the requested resource") ||
		!strings.Contains(err.Error(), "/api/v1/namespaces/default/nosuchthings") {
		t.Errorf("creating a nosuchthing = %v, want NotFound naming the path", err)
	}
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	err = ts.client.CoreV1().RESTClient().Get().Namespace("default").Resource("pods").Name("p").SubResource("nosuch").Do(ctx).Error()
	if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "/api/v1/namespaces/default/pods/p/nosuch") {
		t.Errorf("an unknown subresource = %v, want NotFound naming the path", err)
	}
}

// TestDeleteRetriesAConflictingMark checks that marking an object with a
// finalizer for deletion is retried when the object was written meanwhile,
// rather than answering a plain delete with 409.
func TestDeleteRetriesAConflictingMark(t *testing.T) {
	var rs *racingStore
	ts := newTestServer(t, func(c *Config) {
		res, _ := registry.Lookup("configmaps")
		inner, key := c.Store, storageKey(res, "default", "held")
		rs = &racingStore{Store: inner, key: key, race: func(ctx context.Context) error {
			kv, err := inner.Get(ctx, key)
			if err != nil {
				return err
			}
			_, err = inner.Update(ctx, key, kv.Value, kv.ModRevision)
			return err
		}}
		c.Store = rs
	})
	ctx := testContext(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete = %v, want success", err)
	}
	if !rs.raced.Load() || rs.err != nil {
		t.Fatalf("the store did not race the delete (raced %v, %v)", rs.raced.Load(), rs.err)
	}
	got, err := cms.Get(ctx, "held", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil {
		t.Errorf("after Delete: %v, %v; want the object marked for deletion", got, err)
	}
}
