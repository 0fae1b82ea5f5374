package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// FuzzAPI sends creates, updates and patches of all three types, of every
// kind served, with fuzzed bodies and query parameters, to a real server
// over a real store, and checks what upstream promises of every write:
// no 5xx and no panic; every 4xx a metav1.Status with a reason; a refused
// or dry-run write changes nothing stored; an accepted one is what a GET
// then returns. The store is put back as it was after each input, so an
// input fails alike whatever ran before it.
//
// Without -fuzz it runs the seeds (addFuzzSeeds) and the inputs saved in
// testdata/fuzz/FuzzAPI. To search for more:
//
//	go test -run '^$' -fuzz FuzzAPI -fuzztime 60s -parallel 2 ./server/apiserver/
func FuzzAPI(f *testing.F) {
	h := newFuzzHarness(f)
	addFuzzSeeds(f, h.kinds)
	f.Fuzz(func(t *testing.T, kind, op uint8, status bool, query string, body []byte) {
		res := h.kinds[int(kind)%len(h.kinds)]
		o := fuzzOps[int(op)%len(fuzzOps)]
		// Only main resources are created; only kinds with a status
		// subresource serve one.
		status = status && res.HasStatus && !o.create
		before := h.snapshot(t)
		defer h.restore(t, before)
		h.check(t, res, o, status, fuzzQuery(query), body, before)
	})
}

// fuzzHarness is a server over a real bbolt store, served over HTTP,
// holding one object named fuzzName of every kind.
type fuzzHarness struct {
	url    string
	client *http.Client
	store  store.Store
	kinds  []*registry.Resource
}

func newFuzzHarness(f *testing.F) *fuzzHarness {
	f.Helper()
	st := storetest.NewWith(f, store.Options{ProgressInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	s, err := New(Config{Store: st, ServiceCIDR: "10.43.0.0/24", Version: "test"})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.EnsureNamespaces(context.Background()); err != nil {
		f.Fatal(err)
	}
	ts := httptest.NewServer(s)
	f.Cleanup(ts.Close)
	// The timeout only ends a hung request, which then fails the input.
	// CustomResourceDefinitions, APIServices and IPAddresses are left
	// out: their name must be PLURAL.GROUP, VERSION.GROUP or an IP
	// address, which no one name of every kind can be (crd_test.go and
	// the registry's apiservice_test.go and servicecidr_test.go cover
	// their bad input).
	kinds := slices.DeleteFunc(registry.All(), func(r *registry.Resource) bool {
		return r.Name == "customresourcedefinitions" || r.Name == "apiservices" || r.Name == "ipaddresses"
	})
	h := &fuzzHarness{url: ts.URL, client: &http.Client{Timeout: 30 * time.Second}, store: st, kinds: kinds}
	for _, res := range h.kinds {
		if res.View != nil {
			continue // its sample is that of the resource it views
		}
		resp := h.do(f, http.MethodPost, collectionPath(res), "application/json", "", sampleObject(f, res, fuzzName))
		if resp.code != http.StatusCreated {
			f.Fatalf("creating the %s sample = %d %s; give %s a valid sample in fuzzSamples", res.Kind, resp.code, resp.body, res.Kind)
		}
	}
	return h
}

// collectionPath is where objects of res are created: in namespace
// default for namespaced kinds.
func collectionPath(res *registry.Resource) string {
	p := "/api/v1/"
	if res.Group != "" {
		p = "/apis/" + res.GroupVersion().String() + "/"
	}
	if res.Namespaced {
		p += "namespaces/default/"
	}
	return p + res.Name
}

// fuzzQuery makes q fit in a request line: bytes a URL may not hold are
// escaped, and what the server must cope with (bad escapes, empty
// values, repeated keys) is kept.
func fuzzQuery(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c > ' ' && c < 0x7f && c != '#' {
			b.WriteByte(c)
			continue
		}
		b.WriteString(url.QueryEscape(string(c)))
	}
	return b.String()
}

// fuzzResponse is a response read whole.
type fuzzResponse struct {
	code        int
	contentType string
	body        []byte
}

func (h *fuzzHarness) do(t testing.TB, method, path, contentType, query string, body []byte) fuzzResponse {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.RawQuery = query
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s?%s: no response (a panic in the handler is logged above): %v", method, path, query, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s?%s: reading the response: %v", method, path, query, err)
	}
	return fuzzResponse{code: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: data}
}

// check sends one write and checks the invariants; before is the store
// as it was.
func (h *fuzzHarness) check(t *testing.T, res *registry.Resource, op fuzzOp, status bool, query string, body []byte, before map[string]store.KV) {
	path := collectionPath(res)
	if !op.create {
		path += "/" + fuzzName
		if status {
			path += "/status"
		}
	}
	resp := h.do(t, op.method, path, op.contentType, query, body)
	t.Logf("%s %s?%s (%s) = %d %.2000s", op.method, path, query, op.name, resp.code, resp.body)
	switch {
	case resp.code >= 500:
		t.Fatalf("answered %d, want no 5xx", resp.code)
	case resp.code >= 400:
		checkFailureStatus(t, resp)
		h.checkUnchanged(t, before, "a refused write")
	case resp.code == http.StatusOK || resp.code == http.StatusCreated:
		if q, _ := url.ParseQuery(query); q.Has("dryRun") {
			h.checkUnchanged(t, before, "a dry run")
			return
		}
		h.checkStored(t, res, resp)
	default:
		t.Fatalf("answered %d, want 200, 201 or a 4xx", resp.code)
	}
}

// checkFailureStatus checks that a 4xx carries a metav1.Status saying
// the same code, with a reason.
func checkFailureStatus(t *testing.T, resp fuzzResponse) {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(resp.body, &st); err != nil || !strings.HasPrefix(resp.contentType, "application/json") {
		t.Fatalf("%d answered in %q, not a JSON Status: %v", resp.code, resp.contentType, err)
	}
	if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure || int(st.Code) != resp.code || st.Reason == "" || st.Message == "" {
		t.Fatalf("%d answered with kind %q apiVersion %q status %q code %d reason %q message %q; want a v1 Status Failure with code %d, a reason and a message",
			resp.code, st.Kind, st.APIVersion, st.Status, st.Code, st.Reason, st.Message, resp.code)
	}
}

// checkUnchanged fails t if any key in the store differs from before in
// value or revision: what refused the write also left nothing behind.
func (h *fuzzHarness) checkUnchanged(t *testing.T, before map[string]store.KV, what string) {
	t.Helper()
	after := h.snapshot(t)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("%s changed the store (-before +after):\n%s", what, diff)
	}
}

// checkStored checks that the object an accepted write answered with is
// the one stored, as a GET returns it.
func (h *fuzzHarness) checkStored(t *testing.T, res *registry.Resource, resp fuzzResponse) {
	t.Helper()
	var written struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(resp.body, &written); err != nil || written.Metadata.Name == "" {
		t.Fatalf("accepted write answered with no object: %v", err)
	}
	kv, err := h.store.Get(context.Background(), storageKey(res, written.Metadata.Namespace, written.Metadata.Name))
	if err != nil {
		t.Fatalf("the object written is not stored: %v", err)
	}
	if rv := formatRV(kv.ModRevision); written.Metadata.ResourceVersion != rv {
		t.Fatalf("accepted write answered with resourceVersion %q, stored at %s", written.Metadata.ResourceVersion, rv)
	}
	got := h.do(t, http.MethodGet, collectionPath(res)+"/"+written.Metadata.Name, "", "", nil)
	if got.code != http.StatusOK {
		t.Fatalf("GET of the object written = %d %s", got.code, got.body)
	}
	var want, read any
	if err := json.Unmarshal(resp.body, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got.body, &read); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, read) {
		t.Fatalf("GET differs from what the write answered (-written +read):\n%s", cmp.Diff(want, read))
	}
}

// snapshot reads every key in the store.
func (h *fuzzHarness) snapshot(t *testing.T) map[string]store.KV {
	t.Helper()
	kvs, _, err := h.store.List(context.Background(), "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]store.KV, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv
	}
	return m
}

// restore puts the store back to before: keys added are deleted, keys
// changed or deleted are written back.
func (h *fuzzHarness) restore(t *testing.T, before map[string]store.KV) {
	t.Helper()
	ctx := context.Background()
	after := h.snapshot(t)
	keys := make([]string, 0, len(after))
	for k := range after {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := before[k]; !ok {
			if _, _, err := h.store.Delete(ctx, k, 0); err != nil {
				t.Fatalf("restore: deleting %s: %v", k, err)
			}
		}
	}
	for k, kv := range before {
		cur, ok := after[k]
		var err error
		switch {
		case !ok:
			_, err = h.store.Create(ctx, k, kv.Value)
		case !bytes.Equal(cur.Value, kv.Value):
			_, err = h.store.Update(ctx, k, kv.Value, 0)
		}
		if err != nil {
			t.Fatalf("restore: writing %s back: %v", k, err)
		}
	}
}
