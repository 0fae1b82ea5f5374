package streaming_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/agent/tunnel"
	"github.com/minik-dev/minik/server/streaming"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// nodeKey is the metadata key that stands for the node certificate here.
const nodeKey = "x-test-node"

func nodeFromMetadata(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(nodeKey); len(v) == 1 {
		return v[0], nil
	}
	return "", streaming.ErrNotNode
}

// fakeStreamer is the node's pod manager: each test sets what it does.
type fakeStreamer struct {
	logs func(ctx context.Context, pod types.NamespacedName, container string, opts *corev1.PodLogOptions, w io.Writer) error
	exec func(ctx context.Context, pod types.NamespacedName, container string, cmd []string, s pods.ExecStreams) (int, error)
	dial func(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error)
}

// DialPod implements tunnel.Dialer.
func (f *fakeStreamer) DialPod(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error) {
	if f.dial == nil {
		return nil, pods.ErrNotFound
	}
	return f.dial(ctx, pod, port, loopback)
}

func (f *fakeStreamer) Logs(ctx context.Context, pod types.NamespacedName, container string, opts *corev1.PodLogOptions, w io.Writer) error {
	if f.logs == nil {
		return pods.ErrNotFound
	}
	return f.logs(ctx, pod, container, opts, w)
}

func (f *fakeStreamer) Exec(ctx context.Context, pod types.NamespacedName, container string, cmd []string, s pods.ExecStreams) (int, error) {
	if f.exec == nil {
		return 0, pods.ErrNotFound
	}
	return f.exec(ctx, pod, container, cmd, s)
}

// harness runs a streaming.Server behind real gRPC (bufconn) and a TLS
// API endpoint whose handler hands pods to ServePodSubresource.
type harness struct {
	t    *testing.T
	srv  *streaming.Server
	http *httptest.Server

	mu   sync.Mutex
	lis  *bufconn.Listener // guarded by mu; the current gRPC listener
	grpc *grpc.Server      // guarded by mu
	pods map[string]*corev1.Pod
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := &harness{t: t, srv: streaming.NewServer(lg, nodeFromMetadata), pods: map[string]*corev1.Pod{}}
	h.srv.OpenTimeout = 5 * time.Second
	h.startGRPC()
	h.http = httptest.NewUnstartedServer(http.HandlerFunc(h.serveAPI))
	h.http.EnableHTTP2 = false
	h.http.StartTLS()
	t.Cleanup(func() {
		h.http.Close()
		h.mu.Lock()
		h.grpc.Stop()
		h.mu.Unlock()
	})
	return h
}

// startGRPC serves the Tunnel service on a fresh listener.
func (h *harness) startGRPC() {
	g := grpc.NewServer()
	h.srv.Register(g)
	lis := bufconn.Listen(1 << 20)
	go g.Serve(lis)
	h.mu.Lock()
	h.lis, h.grpc = lis, g
	h.mu.Unlock()
}

func (h *harness) dial(ctx context.Context, _ string) (net.Conn, error) {
	h.mu.Lock()
	lis := h.lis
	h.mu.Unlock()
	return lis.DialContext(ctx)
}

// addPod makes pod (in namespace default, bound to node unless empty)
// known to the API handler.
func (h *harness) addPod(name, node string, containers ...string) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)}}
	pod.Spec.NodeName = node
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
	}
	h.mu.Lock()
	h.pods[name] = pod
	h.mu.Unlock()
}

func (h *harness) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/namespaces/default/pods/")
	name, sub, ok2 := strings.Cut(rest, "/")
	sub, _, _ = strings.Cut(sub, "/") // proxy/PATH
	if parts := strings.Split(name, ":"); len(parts) == 3 {
		name = parts[1] // SCHEME:NAME:PORT
	} else {
		name = parts[0] // NAME[:PORT]
	}
	h.mu.Lock()
	pod := h.pods[name]
	h.mu.Unlock()
	if !ok || !ok2 || pod == nil {
		http.NotFound(w, r)
		return
	}
	h.srv.ServePodSubresource(w, r, pod.DeepCopy(), sub)
}

// startAgent runs tunnel.Run for node with s until the test ends, and
// waits until the node is connected.
func (h *harness) startAgent(node string, s pods.Streamer) {
	h.t.Helper()
	conn, err := grpc.NewClient("passthrough:///tunnel",
		grpc.WithContextDialer(h.dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, nodeKey, node), desc, cc, method, opts...)
		}))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	lg := slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { done <- tunnel.Run(ctx, conn, node, s, lg) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("tunnel.Run = %v, want nil", err)
			}
		case <-time.After(waitTimeout):
			h.t.Errorf("tunnel.Run did not return after cancel")
		}
		conn.Close()
	})
	h.waitConnected(node)
}

func (h *harness) waitConnected(node string) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !h.srv.Connected(node) {
		if time.Now().After(deadline) {
			h.t.Fatalf("node %q did not connect", node)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// url returns the URL of a pod subresource with query q.
func (h *harness) url(pod, sub string, q url.Values) string {
	return h.http.URL + "/api/v1/namespaces/default/pods/" + pod + "/" + sub + "?" + q.Encode()
}

// restConfig is a client config for the API endpoint.
func (h *harness) restConfig() *rest.Config {
	return &rest.Config{Host: h.http.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

// get starts a GET and returns the response; the body is closed at the end
// of the test.
func (h *harness) get(ctx context.Context, u string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", u, err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// recv waits for a value from c.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

var errTest = errors.New("test error")
