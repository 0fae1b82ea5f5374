package streaming_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
)

// podServer is an HTTP server on 127.0.0.1 standing in for a pod, and the
// node-side dialer that reaches it.
type podServer struct {
	srv *httptest.Server

	mu    sync.Mutex
	dials []dialCall // guarded by mu
}

type dialCall struct {
	pod      types.NamespacedName
	port     int
	loopback bool
}

func newPodServer(t *testing.T, h http.Handler) *podServer {
	t.Helper()
	ps := &podServer{srv: httptest.NewServer(h)}
	t.Cleanup(ps.srv.Close)
	return ps
}

func (ps *podServer) dial(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error) {
	ps.mu.Lock()
	ps.dials = append(ps.dials, dialCall{pod, port, loopback})
	ps.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", ps.srv.Listener.Addr().String())
}

func (ps *podServer) calls() []dialCall {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]dialCall(nil), ps.dials...)
}

// echoHandler answers with the request's method, path, query, the
// headers that matter and its body.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Seen-Auth", r.Header.Get("Authorization")+r.Header.Get("Impersonate-Extra-Scopes"))
	w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
	io.WriteString(w, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery+" "+string(body))
}

func (h *harness) do(method, u, body string, hdr http.Header) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, string(b)
}

func TestPodProxy(t *testing.T) {
	h := newHarness(t)
	h.addPod("web", "n1", "c")
	ps := newPodServer(t, http.HandlerFunc(echoHandler))
	h.startAgent("n1", &fakeStreamer{dial: ps.dial})
	base := h.http.URL + "/api/v1/namespaces/default/pods/"
	for _, tc := range []struct {
		method, path, body, want string
		port                     int
	}{
		{"GET", "web:8080/proxy/a/b%2Fc?x=1&y=2", "", "GET /a/b%2Fc?x=1&y=2 ", 8080},
		{"POST", "http:web:81/proxy/post", "payload", "POST /post? payload", 81},
		{"PUT", "web:82/proxy", "put", "PUT /? put", 82},
		{"DELETE", "web/proxy/", "", "DELETE /? ", 80},
	} {
		resp, got := h.do(tc.method, base+tc.path, tc.body, http.Header{"Authorization": {"Bearer secret"}, "Impersonate-Extra-Scopes": {"all"}})
		if resp.StatusCode != http.StatusOK || got != tc.want {
			t.Errorf("%s %s = %d %q, want 200 %q", tc.method, tc.path, resp.StatusCode, got, tc.want)
		}
		if a := resp.Header.Get("X-Seen-Auth"); a != "" {
			t.Errorf("%s %s: pod saw credentials %q, want them stripped", tc.method, tc.path, a)
		}
		if f := resp.Header.Get("X-Seen-Forwarded-For"); f == "" {
			t.Errorf("%s %s: pod saw no X-Forwarded-For", tc.method, tc.path)
		}
		calls := ps.calls()
		last := calls[len(calls)-1]
		if last.port != tc.port || last.loopback || last.pod != (types.NamespacedName{Namespace: "default", Name: "web"}) {
			t.Errorf("%s %s: dialed %+v, want pod default/web port %d from the node's network", tc.method, tc.path, last, tc.port)
		}
	}
}

// TestPodProxyStreamsLargeBodies sends and receives 8 MiB through the
// tunnel, both ways.
func TestPodProxyStreamsLargeBodies(t *testing.T) {
	h := newHarness(t)
	h.addPod("web", "n1", "c")
	ps := newPodServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	h.startAgent("n1", &fakeStreamer{dial: ps.dial})
	body := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
	resp, got := h.do("POST", h.http.URL+"/api/v1/namespaces/default/pods/web:80/proxy/", string(body), nil)
	if resp.StatusCode != http.StatusOK || got != string(body) {
		t.Errorf("echo of %d bytes = %d, %d bytes back", len(body), resp.StatusCode, len(got))
	}
}

func TestPodProxyUpgrade(t *testing.T) {
	h := newHarness(t)
	h.addPod("web", "n1", "c")
	ps := newPodServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString(strings.ToUpper(line))
		rw.Flush()
	}))
	h.startAgent("n1", &fakeStreamer{dial: ps.dial})
	req, _ := http.NewRequest("GET", h.http.URL+"/api/v1/namespaces/default/pods/web:80/proxy/up", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := h.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %d, want 101", resp.StatusCode)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("upgraded body is %T, not writable", resp.Body)
	}
	io.WriteString(rwc, "hello\n")
	got := make([]byte, 6)
	if _, err := io.ReadFull(rwc, got); err != nil || string(got) != "HELLO\n" {
		t.Errorf("upgraded echo = %q, %v; want HELLO", got, err)
	}
}

func TestPodProxyErrors(t *testing.T) {
	h := newHarness(t)
	h.addPod("web", "n1", "c")
	h.addPod("gone", "n1", "c")
	h.addPod("elsewhere", "n2", "c")
	h.addPod("unbound", "", "c")
	h.startAgent("n1", &fakeStreamer{dial: func(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error) {
		if pod.Name == "gone" {
			return nil, pods.ErrNotFound
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errTest}
	}})
	base := h.http.URL + "/api/v1/namespaces/default/pods/"
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"web:0/proxy/", 400, "between 1 and 65535"},
		{"web:http/proxy/", 400, "has no port named"},
		{"ftp:web:21/proxy/", 400, "invalid proxy target"},
		{"gone:80/proxy/", 404, "not found"},
		{"web:80/proxy/", 503, "error trying to reach pod web"},
		{"elsewhere:80/proxy/", 503, "is not connected"},
		{"unbound:80/proxy/", 400, "does not have a host assigned"},
	} {
		resp, body := h.do("GET", base+tc.path, "", nil)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("GET %s = %d %s, want %d with %q", tc.path, resp.StatusCode, body, tc.code, tc.msg)
		}
	}
}

// TestPodProxyHTTPS reaches a pod serving TLS with a certificate no one
// signed, as Kubernetes does.
func TestPodProxyHTTPS(t *testing.T) {
	h := newHarness(t)
	h.addPod("web", "n1", "c")
	pod := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls "+r.URL.Path)
	}))
	t.Cleanup(pod.Close)
	h.startAgent("n1", &fakeStreamer{dial: func(ctx context.Context, _ types.NamespacedName, _ int, _ bool) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", pod.Listener.Addr().String())
	}})
	resp, got := h.do("GET", h.http.URL+"/api/v1/namespaces/default/pods/https:web:443/proxy/secure", "", nil)
	if resp.StatusCode != http.StatusOK || got != "tls /secure" {
		t.Errorf("https proxy = %d %q, want 200 %q", resp.StatusCode, got, "tls /secure")
	}
}

// TestDialPod checks that DialPod gives a connection to the pod's port
// through its node's agent, and refuses a pod bound to no node.
func TestDialPod(t *testing.T) {
	h := newHarness(t)
	h.addPod("hook", "n1", "c")
	ps := newPodServer(t, http.HandlerFunc(echoHandler))
	h.startAgent("n1", &fakeStreamer{dial: ps.dial})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hook", UID: "uid-hook"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	conn, err := h.srv.DialPod(ctx, pod, 8443)
	if err != nil {
		t.Fatalf("DialPod: %v", err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /dialed HTTP/1.1\r\nHost: hook\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "GET /dialed") {
		t.Errorf("pod answered %q, want the echo of GET /dialed", body)
	}
	want := []dialCall{{types.NamespacedName{Namespace: "default", Name: "hook"}, 8443, false}}
	if got := ps.calls(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("dials = %+v, want %+v", got, want)
	}
	pod.Spec.NodeName = ""
	if _, err := h.srv.DialPod(ctx, pod, 8443); !apierrors.IsBadRequest(err) {
		t.Errorf("DialPod of an unbound pod = %v, want 400", err)
	}
}

// TestPodProxyRewritesLinks: links to the pod's own pages in HTML it
// serves, and its redirects, come back through the proxy path, as
// Kubernetes' proxy rewrites them; other content is left alone.
func TestPodProxyRewritesLinks(t *testing.T) {
	h := newHarness(t)
	h.addPod("web", "n1", "c")
	ps := newPodServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/plain":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, `<a href="/rewriteme">test</a>`)
		default:
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<a href="/rewriteme">test</a>`)
		}
	}))
	h.startAgent("n1", &fakeStreamer{dial: ps.dial})
	prefix := "/api/v1/namespaces/default/pods/web:80/proxy"
	if resp, got := h.do("GET", h.http.URL+prefix+"/", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(got, `href="`+prefix+`/rewriteme"`) {
		t.Errorf("GET %s/ = %d %q, want the link through the proxy", prefix, resp.StatusCode, got)
	}
	if _, got := h.do("GET", h.http.URL+prefix+"/plain", "", nil); got != `<a href="/rewriteme">test</a>` {
		t.Errorf("GET %s/plain = %q, want text/plain untouched", prefix, got)
	}
	req, _ := http.NewRequest("GET", h.http.URL+prefix+"/moved", nil)
	resp, err := h.http.Client().Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != prefix+"/elsewhere" {
		t.Errorf("redirect Location = %q, want %q", loc, prefix+"/elsewhere")
	}
}
