package apiserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
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

// handlerRun is what a test handler saw.
type handlerRun struct {
	started chan struct{} // closed when the handler starts
	ended   chan error    // the handler's context error when it returns
}

func newHandlerRun() *handlerRun {
	return &handlerRun{started: make(chan struct{}), ended: make(chan error, 1)}
}

// streamHandler flushes a header and then one line per value from lines
// until its context ends.
func streamHandler(run *handlerRun, lines <-chan string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { run.ended <- r.Context().Err() }()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Transfer-Encoding", "chunked")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(run.started)
		for {
			select {
			case l := <-lines:
				if _, err := io.WriteString(w, l+"\n"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
}

func TestInProcessStreamEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(cancel context.CancelFunc, stop context.CancelFunc, body io.Closer)
		want error // Read's error after the end
	}{
		{"client closes the body", func(_, _ context.CancelFunc, body io.Closer) { body.Close() }, errBodyClosed},
		{"client context ends", func(cancel, _ context.CancelFunc, _ io.Closer) { cancel() }, context.Canceled},
		{"loopback stops", func(_, stop context.CancelFunc, _ io.Closer) { stop() }, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			stopCtx, stop := context.WithCancel(context.Background())
			defer stop()
			run, lines := newHandlerRun(), make(chan string)
			tr := newInProcessTransport(stopCtx, streamHandler(run, lines), LoopbackUser, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://loopback/stream?watch=true", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			if resp.ContentLength != -1 || resp.Header.Get("Transfer-Encoding") != "" || resp.Header.Get("Content-Type") != "text/plain" {
				t.Errorf("response length %d, header %v; want -1, Content-Type text/plain only", resp.ContentLength, resp.Header)
			}
			buf := make([]byte, 64)
			for _, l := range []string{"one", "two"} {
				lines <- l
				n, err := io.ReadAtLeast(resp.Body, buf, len(l)+1)
				if got := string(buf[:n]); err != nil || got != l+"\n" {
					t.Fatalf("Read = %q, %v; want %q", got, err, l+"\n")
				}
			}
			tc.end(cancel, stop, resp.Body)
			select {
			case err := <-run.ended:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("handler context error = %v, want %v", err, context.Canceled)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("handler still running 10s after the end")
			}
			if _, err := resp.Body.Read(buf); !errors.Is(err, tc.want) {
				t.Errorf("Read after the end = %v, want %v", err, tc.want)
			}
			resp.Body.Close()
			stop()
			waitGoroutines(t, before)
		})
	}
}

func TestInProcessBackpressure(t *testing.T) {
	stopCtx, stop := context.WithCancel(context.Background())
	defer stop()
	run := newHandlerRun()
	wrote := make(chan int, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { run.ended <- r.Context().Err() }()
		chunk := make([]byte, 64<<10)
		total := 0
		defer func() { wrote <- total }()
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if total += len(chunk); total > 4*maxUnreadStream {
				return
			}
		}
	})
	tr := newInProcessTransport(stopCtx, h, LoopbackUser, nil)
	req, _ := http.NewRequest(http.MethodGet, "http://loopback/big?watch=1", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	// The client reads nothing: the handler must stop writing, not
	// buffer without bound, and end when the client closes the body.
	resp.Body.Close()
	select {
	case n := <-wrote:
		if n > 2*maxUnreadStream {
			t.Errorf("handler wrote %d bytes to a client that read none, want at most %d", n, 2*maxUnreadStream)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("handler still writing 10s after the body was closed")
	}
}

func TestInProcessResponse(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		method  string
		code    int
		header  http.Header
		body    string
	}{
		{"status, headers and body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "3")
			w.Header().Add("Warning", `299 - "a"`)
			w.Header().Add("Warning", `299 - "b"`)
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"kind":"Status"}`)
		}, http.MethodGet, http.StatusTooManyRequests, http.Header{
			"Content-Type": {"application/json"}, "Retry-After": {"3"}, "Warning": {`299 - "a"`, `299 - "b"`},
		}, `{"kind":"Status"}`},
		{"no WriteHeader", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}, http.MethodGet, http.StatusOK, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, "ok"},
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {}, http.MethodGet, http.StatusOK, http.Header{}, ""},
		{"request seen as a server sees it", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			u, _ := loopbackUser(r)
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Join([]string{r.Method, r.RequestURI, r.Host, r.RemoteAddr, u.Name, r.Header.Get("X-Test"), string(b)}, " "))
		}, http.MethodPost, http.StatusOK, http.Header{"Content-Type": {"text/plain"}},
			"POST /p?q=1 loopback loopback system:minik-loopback yes body"},
		{"HEAD has no body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "ignored")
		}, http.MethodHead, http.StatusOK, http.Header{"Content-Type": {"text/plain"}}, ""},
	}
	// Requests that may stream run the handler on a goroutine of its own;
	// one that does not flush answers the same.
	for _, query := range []string{"q=1", "q=1&watch=true"} {
		for _, tc := range tests {
			t.Run(query+"/"+tc.name, func(t *testing.T) {
				tr := newInProcessTransport(context.Background(), tc.handler, LoopbackUser, nil)
				req, _ := http.NewRequest(tc.method, "http://loopback/p?"+query, strings.NewReader("body"))
				req.Header.Set("X-Test", "yes")
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("reading the body: %v", err)
				}
				want := strings.Replace(tc.body, "/p?q=1", "/p?"+query, 1)
				if resp.StatusCode != tc.code || string(b) != want || resp.ContentLength != int64(len(want)) {
					t.Errorf("response = %d %q (length %d), want %d %q", resp.StatusCode, b, resp.ContentLength, tc.code, want)
				}
				if diff := cmp.Diff(tc.header, resp.Header); diff != "" {
					t.Errorf("header (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestMayStream(t *testing.T) {
	tests := []struct {
		url  string
		want bool
	}{
		{"/api/v1/namespaces/default/pods/a", false},
		{"/api/v1/pods?labelSelector=watch%3Dyes", false},
		{"/api/v1/pods?watch=false", false},
		{"/api/v1/pods?watch=0", false},
		{"/api/v1/pods?watch=true", true},
		{"/api/v1/pods?resourceVersion=5&watch=1", true},
		{"/api/v1/watch/pods", true},
		{"/api/v1/namespaces/default/pods/a/log", true},
		{"/api/v1/namespaces/default/pods/a/exec", true},
		{"/api/v1/namespaces/default/pods/a/attach", true},
		{"/api/v1/namespaces/default/pods/a/portforward", true},
		{"/api/v1/namespaces/default/pods/a/proxy/x", true},
		{"/api/v1/namespaces/default/pods/a/status", false},
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := mayStream(u); got != tc.want {
			t.Errorf("mayStream(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
}

func TestInProcessHandlerPanics(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		handler http.HandlerFunc
		wantErr error // from RoundTrip
		readErr error // from reading the body
	}{
		{"before responding", "/", func(w http.ResponseWriter, r *http.Request) { panic("boom") }, errHandlerPanicked, nil},
		{"before responding to a watch", "/?watch=1", func(w http.ResponseWriter, r *http.Request) { panic("boom") }, errHandlerPanicked, nil},
		{"while streaming", "/?watch=1", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newInProcessTransport(context.Background(), tc.handler, LoopbackUser, nil)
			req, _ := http.NewRequest(http.MethodGet, "http://loopback"+tc.path, nil)
			resp, err := tr.RoundTrip(req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("RoundTrip error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if _, err := io.ReadAll(resp.Body); !errors.Is(err, tc.readErr) {
				t.Errorf("reading the body = %v, want %v", err, tc.readErr)
			}
		})
	}
}

func TestInProcessRefusesUpgrade(t *testing.T) {
	var hijackErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		_, _, hijackErr = rec.Hijack()
		w.WriteHeader(http.StatusBadRequest)
	})
	tr := newInProcessTransport(context.Background(), h, LoopbackUser, nil)
	req, _ := http.NewRequest(http.MethodPost, "http://loopback/api/v1/namespaces/default/pods/a/exec", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	resp.Body.Close()
	if hijackErr == nil {
		t.Errorf("Hijack over the loopback succeeded, want an error")
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

func TestInProcessCompleteBodyOutlivesContext(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "whole") })
	for _, path := range []string{"/p", "/p?watch=1"} {
		t.Run(path, func(t *testing.T) {
			tr := newInProcessTransport(context.Background(), h, LoopbackUser, nil)
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://loopback"+path, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			defer resp.Body.Close()
			// The response was complete when returned: a context that
			// ends before the client reads it does not lose it.
			cancel()
			if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "whole" {
				t.Errorf("ReadAll = %q, %v; want %q, nil", b, err, "whole")
			}
		})
	}
}
