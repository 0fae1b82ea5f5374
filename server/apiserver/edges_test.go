package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/store"
)

const podBody = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q},"spec":{"containers":[{"name":"c","image":"i"}]}}`

// A create that finds its name taken answers 409 naming the object of the
// body (the URL of a create names none).
func TestCreateConflictNamesObject(t *testing.T) {
	ts := newTestServer(t)
	const path = "/api/v1/namespaces/default/pods"
	body := []byte(fmt.Sprintf(podBody, "dup"))
	if code, st := rawRequest(t, ts, "POST", path, "application/json", body); code != http.StatusCreated {
		t.Fatalf("first POST = %d %s", code, st.Message)
	}
	code, st := rawRequest(t, ts, "POST", path, "application/json", body)
	if code != http.StatusConflict || st.Reason != metav1.StatusReasonAlreadyExists || st.Details == nil || st.Details.Name != "dup" {
		t.Fatalf("second POST = %d %s %q (%+v), want 409 AlreadyExists naming dup", code, st.Reason, st.Message, st.Details)
	}
	if want := `pods "dup" already exists`; st.Message != want {
		t.Errorf("second POST message = %q, want %q", st.Message, want)
	}
}

// A method a resource path does not serve is a 405 MethodNotAllowed
// Status, not a 404.
func TestUnservedMethods(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.client.CoreV1().Pods("default").Create(testContext(t), testPod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ method, path string }{
		{"PUT", "/api/v1/namespaces/default/pods"},
		{"PATCH", "/api/v1/namespaces/default/pods"},
		{"POST", "/api/v1/namespaces/default/pods/p"},
		{"OPTIONS", "/api/v1/namespaces/default/pods"},
		{"OPTIONS", "/api/v1/namespaces/default/pods/p"},
		{"TRACE", "/api/v1/namespaces/default/pods/p"},
		{"CONNECT", "/api/v1/namespaces/default/pods/p"},
		{"OPTIONS", "/api/v1/nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, st := rawRequest(t, ts, tc.method, tc.path, "application/json", []byte("{}"))
			if code != http.StatusMethodNotAllowed || st.Reason != metav1.StatusReasonMethodNotAllowed {
				t.Errorf("%s %s = %d %q, want 405 MethodNotAllowed", tc.method, tc.path, code, st.Reason)
			}
		})
	}
	// Unknown paths stay 404 whatever the method.
	if code, _ := rawRequest(t, ts, "OPTIONS", "/api/v1/namespaces/default/bogus", "", nil); code != http.StatusNotFound {
		t.Errorf("OPTIONS on an unknown resource = %d, want 404", code)
	}
}

// A body of a media type the server does not decode is refused with 415
// instead of being read as JSON; the types served are accepted.
func TestBodyMediaTypes(t *testing.T) {
	ts := newTestServer(t)
	const pods = "/api/v1/namespaces/default/pods"
	yamlPod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: yml\nspec:\n  containers:\n  - name: c\n    image: i\n"
	cases := []struct {
		name, method, path, contentType, body string
		code                                  int
	}{
		{"create text/plain", "POST", pods, "text/plain", fmt.Sprintf(podBody, "t"), 415},
		{"create xml", "POST", pods, "application/xml", fmt.Sprintf(podBody, "x"), 415},
		{"create garbage type", "POST", pods, "not a type", fmt.Sprintf(podBody, "g"), 415},
		{"create json with charset", "POST", pods, "application/json; charset=utf-8", fmt.Sprintf(podBody, "j"), 201},
		{"create yaml", "POST", pods, "application/yaml", yamlPod, 201},
		{"create no type", "POST", pods, "", fmt.Sprintf(podBody, "n"), 201},
		{"update text/plain", "PUT", pods + "/j", "text/plain", fmt.Sprintf(podBody, "j"), 415},
		{"patch text/plain", "PATCH", pods + "/j", "text/plain", `{"metadata":{"labels":{"a":"b"}}}`, 415},
		{"delete body text/plain", "DELETE", pods + "/j", "text/plain", `{"gracePeriodSeconds":0}`, 415},
		{"delete no body text/plain", "DELETE", pods + "/j", "text/plain", "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.revision(t)
			code, st := rawRequest(t, ts, tc.method, tc.path, tc.contentType, []byte(tc.body))
			if code != tc.code {
				t.Fatalf("%s %s (%s) = %d %s, want %d", tc.method, tc.path, tc.contentType, code, st.Message, tc.code)
			}
			if code == http.StatusUnsupportedMediaType && (st.Reason != metav1.StatusReasonUnsupportedMediaType || ts.revision(t) != before) {
				t.Errorf("415 has reason %q and revision %d → %d; want UnsupportedMediaType and no write", st.Reason, before, ts.revision(t))
			}
		})
	}
}

// As upstream, whose decoder defaults both from the URL, a create body
// may leave out kind and apiVersion; one that sets them wrong is refused.
func TestCreateWithoutKind(t *testing.T) {
	ts := newTestServer(t)
	const pods = "/api/v1/namespaces/default/pods"
	spec := `"spec":{"containers":[{"name":"c","image":"i"}]}`
	cases := []struct {
		name, body string
		code       int
	}{
		{"no kind nor apiVersion", `{"metadata":{"name":"a"},` + spec + `}`, 201},
		{"no kind", `{"apiVersion":"v1","metadata":{"name":"b"},` + spec + `}`, 201},
		{"no apiVersion", `{"kind":"Pod","metadata":{"name":"c"},` + spec + `}`, 201},
		{"other kind", `{"kind":"Service","metadata":{"name":"d"},` + spec + `}`, 400},
	}
	for _, tc := range cases {
		code, st := rawRequest(t, ts, "POST", pods, "application/json", []byte(tc.body))
		if code != tc.code {
			t.Errorf("%s: POST = %d %s, want %d", tc.name, code, st.Message, tc.code)
		}
	}
}

// A patch may not move an object to another namespace: upstream answers
// 400, as for an update whose body names another namespace.
func TestPatchNamespace(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const path = "/api/v1/namespaces/default/pods/p"
	cases := []struct{ name, contentType, body string }{
		{"json patch", "application/json-patch+json", `[{"op":"replace","path":"/metadata/namespace","value":"kube-system"}]`},
		{"merge patch", "application/merge-patch+json", `{"metadata":{"namespace":"kube-system"}}`},
		{"strategic merge patch", "application/strategic-merge-patch+json", `{"metadata":{"namespace":"kube-system"}}`},
		{"status patch", "application/merge-patch+json", `{"metadata":{"namespace":"kube-system"}}`},
	}
	for _, tc := range cases {
		p := path
		if tc.name == "status patch" {
			p += "/status"
		}
		before := ts.revision(t)
		code, st := rawRequest(t, ts, "PATCH", p, tc.contentType, []byte(tc.body))
		if code != http.StatusBadRequest || !strings.Contains(st.Message, "does not match the namespace") {
			t.Errorf("%s of metadata.namespace = %d %s, want 400 naming the namespace mismatch", tc.name, code, st.Message)
		}
		if ts.revision(t) != before {
			t.Errorf("%s of metadata.namespace wrote", tc.name)
		}
	}
	// Setting the namespace it already has is no move.
	code, st := rawRequest(t, ts, "PATCH", path, "application/merge-patch+json", []byte(`{"metadata":{"namespace":"default","labels":{"a":"b"}}}`))
	if code != http.StatusOK {
		t.Errorf("merge patch keeping metadata.namespace = %d %s, want 200", code, st.Message)
	}
}

// An empty namespace finalizer is refused with 422 on every way in,
// including the finalize subresource.
func TestNamespaceEmptyFinalizer(t *testing.T) {
	ts := newTestServer(t)
	code, st := rawRequest(t, ts, "POST", "/api/v1/namespaces", "application/json",
		[]byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"},"spec":{"finalizers":[""]}}`))
	if code != http.StatusUnprocessableEntity || !causeNamed(st, "spec.finalizers[0]") {
		t.Errorf("create with finalizer \"\" = %d %s, want 422 naming spec.finalizers[0]", code, st.Message)
	}
	if _, err := ts.client.CoreV1().Namespaces().Create(testContext(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := ts.revision(t)
	code, st = rawRequest(t, ts, "PUT", "/api/v1/namespaces/b/finalize", "application/json",
		[]byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"},"spec":{"finalizers":["kubernetes",""]}}`))
	if code != http.StatusUnprocessableEntity || !causeNamed(st, "spec.finalizers[1]") {
		t.Errorf("finalize with finalizer \"\" = %d %s, want 422 naming spec.finalizers[1]", code, st.Message)
	}
	if ts.revision(t) != before {
		t.Errorf("refused finalize wrote")
	}
}

// listCountingStore counts the keys lists read from the store.
type listCountingStore struct {
	store.Store
	read atomic.Int64
}

func (c *listCountingStore) List(ctx context.Context, prefix string, rev int64) ([]store.KV, int64, error) {
	kvs, at, err := c.Store.List(ctx, prefix, rev)
	c.read.Add(int64(len(kvs)))
	return kvs, at, err
}

func (c *listCountingStore) ListPage(ctx context.Context, prefix, start string, rev int64, limit int) ([]store.KV, int64, bool, error) {
	kvs, at, more, err := c.Store.ListPage(ctx, prefix, start, rev, limit)
	c.read.Add(int64(len(kvs)))
	return kvs, at, more, err
}

// A page of a list, first or continued, reads about the page from the
// store rather than the whole namespace; the pages still make up the
// list as of the first one.
func TestListPageReadsOnlyThePage(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	const pods, limit = 200, 10
	for i := range pods {
		if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod(fmt.Sprintf("p%03d", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	counting := &listCountingStore{Store: ts.store}
	ts.Server.store = counting
	cont, seen, pages := "", 0, 0
	for {
		counting.read.Store(0)
		r := httptest.NewRequest("GET", fmt.Sprintf("/api/v1/namespaces/default/pods?limit=%d&continue=%s", limit, cont), nil)
		w := httptest.NewRecorder()
		ts.Server.ServeHTTP(w, r)
		var list metav1.PartialObjectMetadataList
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &list) != nil {
			t.Fatalf("page %d: %d %s", pages, w.Code, w.Body.Bytes())
		}
		if n := counting.read.Load(); n > limit+1 {
			t.Fatalf("page %d read %d keys from the store, want at most %d", pages, n, limit+1)
		}
		if pages == 0 {
			// A write after the first page shows in none of the next ones.
			if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("p000a", nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		seen += len(list.Items)
		pages++
		if cont = list.Continue; cont == "" {
			break
		}
	}
	if seen != pods || pages != pods/limit {
		t.Errorf("pages = %d holding %d pods, want %d holding %d", pages, seen, pods/limit, pods)
	}
}

// A continue token naming a revision not yet written is bad input (400),
// not a server timeout.
func TestListContinueFromTheFuture(t *testing.T) {
	ts := newTestServer(t)
	tok, _ := json.Marshal(continueToken{Rev: 1 << 40, Start: "/registry/pods/default/a"})
	cont := base64.RawURLEncoding.EncodeToString(tok)
	code, st := rawRequest(t, ts, "GET", "/api/v1/namespaces/default/pods?limit=1&continue="+cont, "", nil)
	if code != http.StatusBadRequest {
		t.Errorf("list continuing at revision 2^40 = %d %s, want 400", code, st.Message)
	}
}
