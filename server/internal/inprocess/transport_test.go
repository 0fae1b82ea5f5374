package inprocess

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
)

// userKey carries a testUser, as the API server's loopback carries the
// caller's identity, through Options.Context.
type userKey struct{}

type testUser struct{ Name string }

var withTestUser = Options{Context: func(ctx context.Context) context.Context {
	return context.WithValue(ctx, userKey{}, testUser{Name: "system:minik-loopback"})
}}

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
		{"client closes the body", func(_, _ context.CancelFunc, body io.Closer) { body.Close() }, ErrBodyClosed},
		{"client context ends", func(cancel, _ context.CancelFunc, _ io.Closer) { cancel() }, context.Canceled},
		{"loopback stops", func(_, stop context.CancelFunc, _ io.Closer) { stop() }, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			stopCtx, stop := context.WithCancel(context.Background())
			defer stop()
			run, lines := newHandlerRun(), make(chan string)
			tr := New(stopCtx, streamHandler(run, lines), Options{})
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
	tr := New(stopCtx, h, Options{})
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
			u, _ := r.Context().Value(userKey{}).(testUser)
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
				tr := New(context.Background(), tc.handler, withTestUser)
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
		{"before responding", "/", func(w http.ResponseWriter, r *http.Request) { panic("boom") }, ErrHandlerPanicked, nil},
		{"before responding to a watch", "/?watch=1", func(w http.ResponseWriter, r *http.Request) { panic("boom") }, ErrHandlerPanicked, nil},
		{"while streaming", "/?watch=1", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(context.Background(), tc.handler, withTestUser)
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
		_, _, hijackErr = http.NewResponseController(w).Hijack()
		w.WriteHeader(http.StatusBadRequest)
	})
	tr := New(context.Background(), h, Options{})
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

func TestInProcessCompleteBodyOutlivesContext(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "whole") })
	for _, path := range []string{"/p", "/p?watch=1"} {
		t.Run(path, func(t *testing.T) {
			tr := New(context.Background(), h, Options{})
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
