package apiserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// nextEvent waits for one event on w.
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch closed early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch event within 10s")
	}
	return watch.Event{}
}

func eventName(ev watch.Event) string {
	if m, ok := ev.Object.(metav1.Object); ok {
		return string(ev.Type) + " " + m.GetName()
	}
	return string(ev.Type)
}

func TestWatchFromResourceVersion(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	a, err := pods.Create(ctx, testPod("a", map[string]string{"app": "x"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := pods.Create(ctx, testPod("b", map[string]string{"app": "x"}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := pods.Patch(ctx, "a", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"y"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	if err := pods.Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	cases := []struct {
		name     string
		selector string
		want     []string
	}{
		{"all", "", []string{"ADDED b", "MODIFIED a", "DELETED b"}},
		// a leaves the selection: a DELETED event, as Kubernetes sends.
		{"selector", "app=x", []string{"ADDED b", "DELETED a", "DELETED b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: a.ResourceVersion, LabelSelector: tc.selector})
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer w.Stop()
			var got []string
			for range tc.want {
				got = append(got, eventName(nextEvent(t, w)))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("events = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWatchWithoutVersionStartsWithState(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, testPod("a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	if got := eventName(nextEvent(t, w)); got != "ADDED a" {
		t.Errorf("first event = %s, want ADDED a", got)
	}
	if _, err := pods.Create(ctx, testPod("b", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := eventName(nextEvent(t, w)); got != "ADDED b" {
		t.Errorf("second event = %s, want ADDED b", got)
	}
}

// rawWatch opens a watch with query q and returns a line reader.
func rawWatch(t *testing.T, ts *testServer, path, q string) (*http.Response, *bufio.Scanner) {
	t.Helper()
	resp, err := http.Get(ts.url + path + "?watch=1&" + q)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewScanner(resp.Body)
}

type rawEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

func readRawEvent(t *testing.T, sc *bufio.Scanner) rawEvent {
	t.Helper()
	got := make(chan rawEvent, 1)
	go func() {
		var ev rawEvent
		if sc.Scan() {
			json.Unmarshal(sc.Bytes(), &ev)
		}
		got <- ev
	}()
	select {
	case ev := <-got:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch line within 10s")
	}
	return rawEvent{}
}

func TestWatchCompactedIsExpired(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	first, err := pods.Create(ctx, testPod("a", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	last, err := pods.Create(ctx, testPod("b", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	rev, _ := strconv.ParseInt(last.ResourceVersion, 10, 64)
	if err := ts.store.Compact(ctx, rev); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	resp, sc := rawWatch(t, ts, "/api/v1/namespaces/default/pods", "resourceVersion="+first.ResourceVersion)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch status = %d, want 200 then an ERROR event", resp.StatusCode)
	}
	ev := readRawEvent(t, sc)
	var st metav1.Status
	json.Unmarshal(ev.Object, &st)
	if ev.Type != "ERROR" || st.Code != http.StatusGone || st.Reason != metav1.StatusReasonExpired {
		t.Errorf("event = %s code %d reason %q, want ERROR 410 Expired", ev.Type, st.Code, st.Reason)
	}
	_, err = pods.List(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err == nil {
		t.Errorf("List at a compacted revision succeeded, want 410 Expired")
	}
}

func TestWatchBookmarksAndInitialEvents(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, sc := rawWatch(t, ts, "/api/v1/namespaces/default/pods",
		"sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
	if ev := readRawEvent(t, sc); ev.Type != "ADDED" {
		t.Fatalf("first event %s, want ADDED", ev.Type)
	}
	ev := readRawEvent(t, sc)
	var marker metav1.PartialObjectMetadata
	json.Unmarshal(ev.Object, &marker)
	if ev.Type != "BOOKMARK" || marker.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Errorf("second event %s annotations %v, want the initial-events-end BOOKMARK", ev.Type, marker.Annotations)
	}
	// Periodic bookmarks follow (BookmarkInterval is short in tests).
	if ev := readRawEvent(t, sc); ev.Type != "BOOKMARK" {
		t.Errorf("later event %s, want a periodic BOOKMARK", ev.Type)
	}
	resp, err := http.Get(ts.url + "/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=true")
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("sendInitialEvents without NotOlderThan = %d, want 422", resp.StatusCode)
	}
}

// TestInformerRelistsAfterExpiry runs a client-go informer whose watch is
// ended by the server while the store compacts past its revision: it must
// relist and keep seeing changes, in JSON and in protobuf.
func TestInformerRelistsAfterExpiry(t *testing.T) {
	for _, ct := range []string{"application/json", protobufType} {
		t.Run(ct, func(t *testing.T) { testInformerRelistsAfterExpiry(t, ct) })
	}
}

func testInformerRelistsAfterExpiry(t *testing.T, contentType string) {
	ts := newTestServer(t)
	ts.cfg.MaxWatchDuration = 300 * time.Millisecond
	ts.cfg.BookmarkInterval = time.Hour
	ctx := testContext(t)
	var lists atomic.Int32
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path == "/api/v1/pods" && (q.Get("watch") == "" || q.Get("sendInitialEvents") == "true") {
			lists.Add(1)
		}
		ts.ServeHTTP(w, r)
	})
	srv := newHTTPServer(t, counting)
	cs := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv, QPS: -1,
		ContentConfig: rest.ContentConfig{ContentType: contentType, AcceptContentTypes: contentType}})
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().Pods().Informer()
	events := make(chan string, 100)
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { events <- "add " + o.(*corev1.Pod).Name },
		UpdateFunc: func(_, o any) { events <- "update " + o.(*corev1.Pod).Name },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			events <- "delete " + o.(*corev1.Pod).Name
		},
	})
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatalf("informer did not sync")
	}
	pods := ts.client.CoreV1().Pods("default")
	expect := func(want string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case got := <-events:
				if got == want {
					return
				}
			case <-deadline:
				t.Fatalf("informer did not report %q", want)
			}
		}
	}
	if _, err := pods.Create(ctx, testPod("a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	expect("add a")
	if _, err := pods.Patch(ctx, "a", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"1"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	expect("update a")
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	expect("delete a")
	before := lists.Load()
	// Move the revision on without touching pods, then compact past the
	// informer's last revision.
	for i := 0; i < 3; i++ {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i)}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := ts.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create service: %v", err)
		}
	}
	rev, _ := ts.store.CurrentRevision(ctx)
	if err := ts.store.Compact(ctx, rev); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for lists.Load() == before {
		if time.Now().After(deadline) {
			t.Fatalf("informer did not relist after its watch expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := pods.Create(ctx, testPod("b", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	expect("add b")
}

// A stored change that cannot be decoded ends the watch with an ERROR
// event (so the client lists again) instead of being skipped silently.
func TestWatchUndecodableEndsWithError(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	a, err := pods.Create(ctx, testPod("a", map[string]string{"app": "x"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: a.ResourceVersion, LabelSelector: "app=x"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	if _, err := ts.store.Create(ctx, "/registry/pods/default/broken", []byte(`{"kind":"Pod","metadata":`)); err != nil {
		t.Fatalf("store Create: %v", err)
	}
	ev := nextEvent(t, w)
	st, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || st.Code != http.StatusInternalServerError || !strings.Contains(st.Message, "/registry/pods/default/broken") {
		t.Fatalf("event = %s %+v, want ERROR with a 500 Status naming the key", ev.Type, ev.Object)
	}
}

// TestWatchOneObject checks that a watch of one named object, in each of
// the ways a client may ask for it, streams that object's events only.
func TestWatchOneObject(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	for _, name := range []string{"a", "a2", "b"} {
		if _, err := pods.Create(ctx, testPod(name, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create(%s): %v", name, err)
		}
	}
	cases := []struct{ name, path, q string }{
		{"field selector", "/api/v1/namespaces/default/pods", "fieldSelector=metadata.name%3Da"},
		{"named path", "/api/v1/namespaces/default/pods/a", ""},
		{"watch prefix", "/api/v1/watch/namespaces/default/pods/a", ""},
	}
	scanners := make([]*bufio.Scanner, len(cases))
	for i, tc := range cases {
		resp, sc := rawWatch(t, ts, tc.path, tc.q)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: watch = %d, want 200", tc.name, resp.StatusCode)
		}
		scanners[i] = sc
	}
	for _, name := range []string{"b", "a2", "a"} {
		patch := []byte(`{"metadata":{"labels":{"touched":"yes"}}}`)
		if _, err := pods.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("Patch(%s): %v", name, err)
		}
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := []string{"ADDED a", "MODIFIED a"}
			for _, w := range want {
				ev := readRawEvent(t, scanners[i])
				var pod corev1.Pod
				json.Unmarshal(ev.Object, &pod)
				if got := ev.Type + " " + pod.Name; got != w {
					t.Fatalf("event = %q, want %q", got, w)
				}
			}
		})
	}
}

// TestWatchPartialMetadataBookmarks watches with the metadata client, as
// metadata informers do: the initial-events-end and periodic BOOKMARKs
// must be PartialObjectMetadata too, or the client cannot decode them and
// its watch ends.
func TestWatchPartialMetadataBookmarks(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	md := metadata.NewForConfigOrDie(&rest.Config{Host: ts.url})
	w, err := md.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace("default").Watch(ctx, metav1.ListOptions{
		AllowWatchBookmarks: true, SendInitialEvents: ptrTo(true), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	var got []string
	for len(got) < 3 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended after %v", got)
			}
			p, isMeta := ev.Object.(*metav1.PartialObjectMetadata)
			if !isMeta {
				t.Fatalf("event %s carries %T (%v), want *PartialObjectMetadata", ev.Type, ev.Object, ev.Object)
			}
			got = append(got, fmt.Sprintf("%s %s", ev.Type, p.Name))
		case <-ctx.Done():
			t.Fatalf("events %v, then none", got)
		}
	}
	if diff := cmp.Diff([]string{"ADDED s", "BOOKMARK ", "BOOKMARK "}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
