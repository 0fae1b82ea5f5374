package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/streaming"
	"github.com/minik-dev/minik/store/storetest"
)

// portTestTimeout bounds every wait; it is not a speed assertion.
const portTestTimeout = 10 * time.Second

// grpcCall is what the gRPC server saw of a call: the ALPN protocol of
// its connection and the node its client certificate names ("" if none).
type grpcCall struct {
	Proto, Node string
}

// portEnv serves an httpsPort on 127.0.0.1 as Run does: a gRPC server
// (with the health service) behind nodes.Service.Handler, in front of an
// HTTP handler that answers with the request's protocol.
type portEnv struct {
	t        *testing.T
	url      string
	ca       *pki.Authority
	roots    *x509.CertPool
	nodeCert tls.Certificate
	calls    chan grpcCall
	health   *health.Server
	port     *httpsPort
	served   chan error
}

// loopbackStub is the API as nodes.New needs it; the tests make no call
// that reaches it.
type loopbackStub struct{}

func (loopbackStub) LoopbackConfig(auth.User) *rest.Config {
	return &rest.Config{Host: "https://127.0.0.1:1"}
}

func (loopbackStub) UpdatePodStatus(context.Context, auth.User, string, string, types.UID, *corev1.PodStatus) (int64, error) {
	return 0, errors.New("loopbackStub: no API behind it")
}

// newPortEnv serves the port; opts are added to the gRPC server's.
func newPortEnv(t *testing.T, opts ...grpc.ServerOption) *portEnv {
	t.Helper()
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(t.Output(), nil))
	svc, err := nodes.New(nodes.Config{Store: storetest.New(t), API: loopbackStub{}, Authority: ca, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	e := &portEnv{t: t, ca: ca, roots: x509.NewCertPool(), calls: make(chan grpcCall, 16), health: health.NewServer(), served: make(chan error, 1)}
	e.roots.AddCert(ca.CACert())
	e.nodeCert = signNodeCert(t, ca, "n1")
	opts = append(append(grpcServerOptions(handshakenCredentials{}), grpc.UnaryInterceptor(e.record)), opts...)
	gs := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(gs, e.health)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "https://" + ln.Addr().String()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })
	e.port = newHTTPSPort(ln, ca.ServerTLSConfig(), gs, &http.Server{Handler: svc.Handler(gs, next)}, lg)
	go func() { e.served <- e.port.Serve() }()
	t.Cleanup(func() { e.shutdown(context.Background()) })
	return e
}

// record notes how each unary call arrived.
func (e *portEnv) record(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	var c grpcCall
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			c.Proto = ti.State.NegotiatedProtocol
		}
	}
	if node, err := streaming.PeerNodeName(ctx); err == nil {
		c.Node = node
	}
	e.calls <- c
	return h(ctx, req)
}

// shutdown shuts the port down (once) and checks that Serve returns nil.
func (e *portEnv) shutdown(ctx context.Context) {
	if e.port == nil {
		return
	}
	e.port.Shutdown(ctx)
	e.port = nil
	select {
	case err := <-e.served:
		if err != nil {
			e.t.Errorf("Serve() = %v, want nil after Shutdown", err)
		}
	case <-time.After(portTestTimeout):
		e.t.Error("Serve did not return after Shutdown")
	}
}

// check calls the health service on conn and returns how the call arrived.
func (e *portEnv) check(conn *grpc.ClientConn) grpcCall {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), portTestTimeout)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		e.t.Fatalf("Check() = %v", err)
	}
	select {
	case c := <-e.calls:
		return c
	default:
		e.t.Fatal("the call was not recorded")
		return grpcCall{}
	}
}

func signNodeCert(t *testing.T, ca *pki.Authority, node string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignClientCert(auth.NodeUserPrefix+node, []string{auth.GroupNodes}, key.Public(), 0)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// silentClient connects to the port and never starts a handshake.
func silentClient(t *testing.T, url string) {
	t.Helper()
	c, err := net.Dial("tcp", url[len("https://"):])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

func TestHTTPSPortServesGRPC(t *testing.T) {
	e := newPortEnv(t)
	silentClient(t, e.url)
	olderAgent := func(cert *tls.Certificate) (*grpc.ClientConn, error) {
		tc := &tls.Config{RootCAs: e.roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{*cert}}
		return grpc.NewClient("passthrough:///"+e.url[len("https://"):], grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	}
	for _, tc := range []struct {
		name string
		dial func(cert *tls.Certificate) (*grpc.ClientConn, error)
		cert *tls.Certificate
		want grpcCall
	}{
		{
			name: "agent with a node certificate: native transport",
			dial: func(c *tls.Certificate) (*grpc.ClientConn, error) { return nodeclient.Dial(e.url, e.roots, c) },
			cert: &e.nodeCert, want: grpcCall{Proto: api.NodeProtocol, Node: "n1"},
		},
		{
			name: "agent registering without a certificate: native transport",
			dial: func(c *tls.Certificate) (*grpc.ClientConn, error) { return nodeclient.Dial(e.url, e.roots, c) },
			want: grpcCall{Proto: api.NodeProtocol},
		},
		{
			name: "older agent offering only h2: through the HTTP server",
			dial: olderAgent, cert: &e.nodeCert, want: grpcCall{Proto: "h2", Node: "n1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.dial(tc.cert)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if diff := cmp.Diff(tc.want, e.check(conn)); diff != "" {
				t.Errorf("call seen by the gRPC server (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPSPortServesHTTP(t *testing.T) {
	e := newPortEnv(t)
	silentClient(t, e.url)
	for _, tc := range []struct {
		name string
		tr   *http.Transport
		path string
		want string
	}{
		{
			name: "HTTP/2",
			tr:   &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}, ForceAttemptHTTP2: true},
			path: "/version", want: "HTTP/2.0",
		},
		{
			name: "HTTP/1.1",
			tr: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: e.roots},
				TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
			},
			path: "/version", want: "HTTP/1.1",
		},
		{
			name: "CA bundle",
			tr:   &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}, ForceAttemptHTTP2: true},
			path: "/cacerts", want: string(e.ca.CAPEM()),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tc.tr, Timeout: portTestTimeout}).Get(e.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || string(body) != tc.want {
				t.Errorf("GET %s = %d %q, want 200 %q", tc.path, resp.StatusCode, body, tc.want)
			}
		})
	}
}

// Shutdown ends streams that outlive the grace, and Serve returns.
func TestHTTPSPortShutdownEndsStreams(t *testing.T) {
	e := newPortEnv(t)
	conn, err := nodeclient.Dial(e.url, e.roots, &e.nodeCert)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), portTestTimeout)
	defer cancel()
	// Watch answers at once, then waits for changes: a stream that stays.
	w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatalf("first Recv() = %v", err)
	}
	grace, cancelGrace := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelGrace()
	e.shutdown(grace)
	if _, err := w.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("Recv() after Shutdown = %v, want code Unavailable", err)
	}
	if _, err := net.Dial("tcp", e.url[len("https://"):]); err == nil {
		t.Error("dialing after Shutdown succeeded, want refused")
	}
}

// A client that negotiated the node protocol but never started HTTP/2
// does not hold up Shutdown (grpc.Server.Stop alone waits for it until the
// connection timeout, made long here).
func TestHTTPSPortShutdownClosesConnectionsWithoutPreface(t *testing.T) {
	e := newPortEnv(t, grpc.ConnectionTimeout(time.Hour))
	d := tls.Dialer{Config: &tls.Config{RootCAs: e.roots, NextProtos: []string{api.NodeProtocol}}}
	silent, err := d.Dial("tcp", e.url[len("https://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if got := silent.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != api.NodeProtocol {
		t.Fatalf("negotiated %q, want %q", got, api.NodeProtocol)
	}
	// The gRPC server has the connection once it sends its SETTINGS.
	silent.SetReadDeadline(time.Now().Add(portTestTimeout))
	if _, err := io.ReadFull(silent, make([]byte, 9)); err != nil {
		t.Fatalf("reading the server's first frame: %v", err)
	}
	grace, cancelGrace := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelGrace()
	done := make(chan struct{})
	go func() { e.shutdown(grace); close(done) }()
	select {
	case <-done:
	case <-time.After(portTestTimeout):
		t.Fatal("Shutdown did not return while a client had not started HTTP/2")
	}
	silent.SetReadDeadline(time.Now().Add(portTestTimeout))
	if _, err := io.ReadAll(silent); err != nil && !errors.Is(err, net.ErrClosed) && !isConnReset(err) {
		t.Errorf("reading the silent connection after Shutdown: %v, want it closed", err)
	}
}

// isConnReset says whether err is the peer resetting the connection.
func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func TestHandshakenCredentialsRefuseConnectionsWithoutTLS(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, err := (handshakenCredentials{}).ServerHandshake(a); !errors.Is(err, errNotTLS) {
		t.Errorf("ServerHandshake(pipe) = %v, want errNotTLS", err)
	}
	if _, _, err := (handshakenCredentials{}).ServerHandshake(tls.Server(a, &tls.Config{})); !errors.Is(err, errNotTLS) {
		t.Errorf("ServerHandshake(TLS before its handshake) = %v, want errNotTLS", err)
	}
}

// After Shutdown, with its clients gone, the port leaves no goroutine
// behind: not its accept loops, nor those of the connections it served
// over each path.
func TestHTTPSPortShutdownLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.CACert())
	gs := grpc.NewServer(grpcServerOptions(handshakenCredentials{})...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") == "application/grpc" {
			gs.ServeHTTP(w, r)
			return
		}
		io.WriteString(w, r.Proto)
	})
	port := newHTTPSPort(ln, ca.ServerTLSConfig(), gs, &http.Server{Handler: h}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	served := make(chan error, 1)
	go func() { served <- port.Serve() }()

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	nodeCert := signNodeCert(t, ca, "n1")
	for _, offer := range [][]string{{api.NodeProtocol}, nil} {
		tc := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: offer, Certificates: []tls.Certificate{nodeCert}}
		conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), portTestTimeout)
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		conn.Close()
		if err != nil {
			t.Fatalf("Check() offering %q = %v", offer, err)
		}
	}
	for _, tr := range []*http.Transport{
		{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true},
		{TLSClientConfig: &tls.Config{RootCAs: roots}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}},
	} {
		resp, err := (&http.Client{Transport: tr, Timeout: portTestTimeout}).Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
	grace, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	port.Shutdown(grace)
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve() = %v, want nil after Shutdown", err)
		}
	case <-time.After(portTestTimeout):
		t.Fatal("Serve did not return after Shutdown")
	}
	silent.Close()
	deadline := time.Now().Add(portTestTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Shutdown, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
