package nodes_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

var _ nodes.API = (*apiserver.Server)(nil)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// env is a node service on a unix socket with real TLS, a real store and
// the real API server behind it.
type env struct {
	t     *testing.T
	ca    *pki.Authority
	st    store.Store
	api   *apiserver.Server
	svc   *nodes.Service
	sock  string
	admin corev1client.CoreV1Interface
	// stop ends the service's Run, as a server shutting down does.
	stop context.CancelFunc
}

type envOptions struct {
	grace time.Duration
	st    store.Store
	ca    *pki.Authority
	// configure, when set, adjusts the service's Config.
	configure func(*nodes.Config)
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(t.Output(), nil))
	ca := opts.ca
	if ca == nil {
		var err error
		if ca, err = pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"}); err != nil {
			t.Fatal(err)
		}
	}
	st := opts.st
	if st == nil {
		st = storetest.New(t)
	}
	authz := &auth.Authorizer{}
	a, err := apiserver.New(apiserver.Config{Store: st, Authorizer: authz, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	authz.Pods = auth.PodNodeFunc(a.PodNode)
	loopCtx, stopLoop := context.WithCancel(context.Background())
	t.Cleanup(stopLoop)
	a.ServeLoopback(loopCtx)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := a.EnsureNamespaces(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := nodes.Config{
		Store: st, API: a, Authority: ca, GracePeriod: opts.grace,
		BatchDelay: 20 * time.Millisecond, ServerAddresses: []string{"127.0.0.1:6443"}, Logger: lg,
	}
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	svc, err := nodes.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "node.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(ca.ServerTLSConfig())))
	svc.RegisterWith(gs)
	runCtx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	ran := make(chan error, 1)
	go func() { gs.Serve(ln); close(served) }()
	go func() { ran <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		gs.Stop()
		for _, c := range []<-chan struct{}{served} {
			select {
			case <-c:
			case <-time.After(testTimeout):
				t.Error("gRPC server did not stop")
			}
		}
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(testTimeout):
			t.Error("Run did not return")
		}
	})
	e := &env{t: t, ca: ca, st: st, api: a, svc: svc, sock: sock, stop: stop}
	e.admin = e.client(auth.AdminUser)
	return e
}

// client returns a core/v1 client calling the API in process as u.
func (e *env) client(u auth.User) corev1client.CoreV1Interface {
	cfg := e.api.LoopbackConfig(u)
	cfg.ContentConfig = rest.ContentConfig{ContentType: "application/json"}
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// dial connects to the service presenting cert (if any).
func (e *env) dial(cert *tls.Certificate) api.NodeClient {
	e.t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.CACert())
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient("unix://"+e.sock, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return api.NewNodeClient(conn)
}

// csr returns a new key and a CSR for it.
func csr(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// register registers node with the join token and returns a client that
// authenticates as it, and the node's config.
func (e *env) register(node string) (api.NodeClient, *api.NodeConfig) {
	e.t.Helper()
	key, req := csr(e.t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := e.dial(nil).Register(ctx, &api.RegisterRequest{Token: e.ca.Token(), NodeName: node, NodePassword: "pw-" + node, Csr: req})
	if err != nil {
		e.t.Fatalf("Register(%q) = %v", node, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		e.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(resp.Certificate, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.dial(&cert), resp.Config
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// createPod creates a pod in namespace default bound to node ("" = unbound).
func (e *env) createPod(name, node string) *corev1.Pod {
	e.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	out, err := e.admin.Pods("default").Create(ctxT(e.t), p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("creating pod %q: %v", name, err)
	}
	return out
}

func nodeUserT(node string) auth.User {
	return auth.User{Name: auth.NodeUserPrefix + node, Groups: []string{auth.GroupNodes}}
}
