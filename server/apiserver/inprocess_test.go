package apiserver

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/server/auth"
)

// loopbackClient is a clientset over ts's loopback acting as u, speaking
// contentType, recording the media types it gets back.
func loopbackClient(t *testing.T, ts *testServer, u auth.User, contentType string) (*kubernetes.Clientset, *contentTypes) {
	t.Helper()
	ts.loopMu.Lock()
	serving := ts.loopCtx != nil
	ts.loopMu.Unlock()
	if !serving {
		ts.ServeLoopback(context.Background())
	}
	cfg := ts.LoopbackConfig(u)
	if contentType == "application/json" {
		cfg.ContentConfig = rest.ContentConfig{ContentType: contentType}
	}
	ct := &contentTypes{}
	cfg.WrapTransport = ct.wrap
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, ct
}

// waitGoroutines waits until no more than n goroutines run, failing
// the test if that does not happen within 10s.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLoopbackCRUD(t *testing.T) {
	for _, contentType := range []string{protobufType, "application/json"} {
		t.Run(contentType, func(t *testing.T) {
			ts := newTestServer(t)
			cs, ct := loopbackClient(t, ts, LoopbackUser, contentType)
			ctx := testContext(t)
			pods := cs.CoreV1().Pods("default")
			created, err := pods.Create(ctx, testPod("a", map[string]string{"app": "x"}), metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			got, err := pods.Get(ctx, "a", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.ResourceVersion != created.ResourceVersion || got.Labels["app"] != "x" {
				t.Errorf("Get = rv %s labels %v, want rv %s labels map[app:x]", got.ResourceVersion, got.Labels, created.ResourceVersion)
			}
			got.Labels["app"] = "y"
			if _, err := pods.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			if _, err := pods.Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
				t.Errorf("Update from a stale version = %v, want Conflict", err)
			}
			if _, err := pods.Create(ctx, testPod("a", nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
				t.Errorf("Create of an existing name = %v, want AlreadyExists", err)
			}
			if err := pods.Delete(ctx, "a", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := pods.Get(ctx, "a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Get after Delete = %v, want NotFound", err)
			}
			list, err := pods.List(ctx, metav1.ListOptions{})
			if err != nil || len(list.Items) != 0 {
				t.Errorf("List after Delete = %v items, %v; want 0, nil", len(list.Items), err)
			}
			// Objects come back in the asked type, Status errors in JSON
			// as over HTTP.
			for _, r := range ct.list() {
				want := contentType
				if r.code >= 400 {
					want = "application/json"
				}
				if r.mediaType != want {
					t.Errorf("%s %s (%d) answered in %q, want %q", r.method, r.path, r.code, r.mediaType, want)
				}
			}
		})
	}
}

func TestLoopbackIdentityAuthorized(t *testing.T) {
	ts := newTestServer(t)
	ts.cfg.Authorizer = &auth.Authorizer{}
	node := auth.User{Name: "system:node:n1", Groups: []string{"system:nodes"}}
	tests := []struct {
		name      string
		user      auth.User
		do        func(context.Context, *kubernetes.Clientset) error
		forbidden bool
	}{
		{"loopback user creates a namespace", LoopbackUser, createNamespace("made-by-loopback"), false},
		{"node lists pods", node, listPods, false},
		{"node creates a namespace", node, createNamespace("made-by-node"), true},
		{"user without rules lists pods", auth.User{Name: "alice"}, listPods, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, _ := loopbackClient(t, ts, tc.user, protobufType)
			err := tc.do(testContext(t), cs)
			if got := apierrors.IsForbidden(err); got != tc.forbidden {
				t.Errorf("error = %v; Forbidden %v, want %v", err, got, tc.forbidden)
			}
			if !tc.forbidden && err != nil {
				t.Errorf("error = %v, want nil", err)
			}
		})
	}
}

func listPods(ctx context.Context, cs *kubernetes.Clientset) error {
	_, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	return err
}

func createNamespace(name string) func(context.Context, *kubernetes.Clientset) error {
	return func(ctx context.Context, cs *kubernetes.Clientset) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	}
}

func TestLoopbackWatchStreamsAndStops(t *testing.T) {
	for _, contentType := range []string{protobufType, "application/json"} {
		t.Run(contentType, func(t *testing.T) {
			ts := newTestServer(t)
			cs, ct := loopbackClient(t, ts, LoopbackUser, contentType)
			ctx := testContext(t)
			pods := cs.CoreV1().Pods("default")
			if _, err := pods.List(ctx, metav1.ListOptions{}); err != nil {
				t.Fatalf("List: %v", err)
			}
			before := runtime.NumGoroutine()
			w, err := pods.Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			// Each event arrives while the watch goes on: the stream is
			// not held back until the handler ends.
			for _, name := range []string{"a", "b", "c"} {
				if _, err := pods.Create(ctx, testPod(name, nil), metav1.CreateOptions{}); err != nil {
					t.Fatalf("Create: %v", err)
				}
				if got, want := eventName(nextEvent(t, w)), "ADDED "+name; got != want {
					t.Fatalf("event = %s, want %s", got, want)
				}
			}
			w.Stop()
			// The handler's goroutine and the watch's own end.
			waitGoroutines(t, before)
			watchType := protobufWatchType
			if contentType == "application/json" {
				watchType = "application/json"
			}
			for _, r := range ct.list() {
				if r.method == http.MethodGet && r.path == "/api/v1/namespaces/default/pods" && r.mediaType != watchType && r.mediaType != contentType {
					t.Errorf("GET pods answered in %q", r.mediaType)
				}
			}
		})
	}
}

func TestLoopbackStopEndsWatchesAndRefuses(t *testing.T) {
	ts := newTestServer(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cs := kubernetes.NewForConfigOrDie(ts.ServeLoopback(ctx))
	w, err := cs.CoreV1().Pods("default").Watch(testContext(t), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	stop()
	select {
	case _, ok := <-w.ResultChan():
		if ok {
			t.Errorf("watch delivered an event after the loopback stopped")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("watch still open 10s after the loopback stopped")
	}
	_, err = cs.CoreV1().Pods("default").List(testContext(t), metav1.ListOptions{})
	if !errors.Is(err, ErrLoopbackStopped) {
		t.Errorf("List after stop = %v, want %v", err, ErrLoopbackStopped)
	}
}

func TestLoopbackWatchEventTypes(t *testing.T) {
	ts := newTestServer(t)
	cs, _ := loopbackClient(t, ts, LoopbackUser, protobufType)
	ctx := testContext(t)
	pods := cs.CoreV1().Pods("default")
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	p, err := pods.Create(ctx, testPod("a", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels = map[string]string{"x": "1"}
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	var got []watch.EventType
	for len(got) < 3 {
		got = append(got, nextEvent(t, w).Type)
	}
	if diff := cmp.Diff([]watch.EventType{watch.Added, watch.Modified, watch.Deleted}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
