package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/pki/pkitest"
	"github.com/minik-dev/minik/store/storetest"
)

const testTimeout = 10 * time.Second

// cluster is a node service and API behind a real HTTPS server, routed
// as `minik server` routes them.
type cluster struct {
	ca    *pki.Authority
	url   string
	admin corev1client.CoreV1Interface
	certs certificatesv1client.CertificatesV1Interface
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterWith(t, nil)
}

// newClusterWith is newCluster with the node service's Config adjusted
// by configure (if set).
func newClusterWith(t *testing.T, configure func(*nodes.Config), opts ...grpc.ServerOption) *cluster {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(t.Output(), nil))
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	authz := &auth.Authorizer{}
	a, err := apiserver.New(apiserver.Config{Store: st, Authorizer: authz, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	authz.Pods = auth.PodNodeFunc(a.PodNode)
	ctx, cancel := context.WithCancel(context.Background())
	a.ServeLoopback(ctx)
	if err := a.EnsureNamespaces(ctx); err != nil {
		t.Fatal(err)
	}
	nodeCfg := nodes.Config{Store: st, API: a, Authority: ca, BatchDelay: 10 * time.Millisecond, Logger: lg}
	if configure != nil {
		configure(&nodeCfg)
	}
	svc, err := nodes.New(nodeCfg)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	svc.RegisterWith(gs)
	srv := httptest.NewUnstartedServer(svc.Handler(gs, a))
	pkitest.StartTLS(srv, ca.ServerTLSConfig())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		select {
		case <-ran:
		case <-time.After(testTimeout):
			t.Error("node service did not stop")
		}
	})
	cfg := a.LoopbackConfig(auth.AdminUser)
	cfg.ContentConfig = rest.ContentConfig{ContentType: "application/json"}
	admin, err := corev1client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := certificatesv1client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{ca: ca, url: srv.URL, admin: admin, certs: certs}
}

func newAgent(t *testing.T, c *cluster, token, dir string) *agent {
	a := &agent{
		cfg: Config{ServerURL: c.url, Token: token, DataDir: dir, NodeName: "n1", HeartbeatInterval: 100 * time.Millisecond},
		lg:  slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	var err error
	if a.servers, err = newServerList(c.url, filepath.Join(dir, ServersFile), a.lg); err != nil {
		t.Fatal(err)
	}
	return a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestJoin(t *testing.T) {
	c := newCluster(t)
	other, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "other"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"full token", c.ca.Token(), nil},
		{"plain secret", c.ca.TokenSecret(), nil},
		{"wrong secret", api.FormatToken(api.CAHash(c.ca.CAPEM()), "wrong"), ErrTokenRefused},
		{"token of another cluster", other.Token(), ErrCAMismatch},
		{"malformed token", "K10abc::server:x", ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := newAgent(t, c, tc.token, dir)
			// Each case is another machine, so another name: a name is
			// bound to the password of the first node that registered it.
			a.cfg.NodeName = strings.ReplaceAll(tc.name, " ", "-")
			j, err := a.join(ctxT(t), c.url)
			if !errors.Is(err, tc.want) {
				t.Fatalf("join() = %v, want %v", err, tc.want)
			}
			certPath := filepath.Join(dir, "tls", certFile)
			if tc.want != nil {
				if _, err := os.Stat(certPath); err == nil {
					t.Errorf("a refused join left a certificate at %s", certPath)
				}
				return
			}
			j.conn.Close()
			if j.config.GetPodCidr() == "" {
				t.Errorf("join() config has no podCIDR")
			}
			first, err := os.ReadFile(certPath)
			if err != nil {
				t.Fatal(err)
			}
			// A restart reuses the certificate.
			a2 := newAgent(t, c, tc.token, dir)
			a2.cfg.NodeName = a.cfg.NodeName
			j2, err := a2.join(ctxT(t), c.url)
			if err != nil {
				t.Fatalf("second join() = %v", err)
			}
			j2.conn.Close()
			if again, _ := os.ReadFile(certPath); !bytes.Equal(first, again) || j2.config.GetPodCidr() != j.config.GetPodCidr() {
				t.Errorf("second join registered again (certificate changed: %v, podCIDR %s → %s)",
					!bytes.Equal(first, again), j.config.GetPodCidr(), j2.config.GetPodCidr())
			}
		})
	}
}

// fakePods records what the agent hands the pod manager.
type fakePods struct {
	mu   sync.Mutex
	sets [][]*corev1.Pod
	kick chan struct{}
}

func (f *fakePods) SetPods(pods []*corev1.Pod) {
	f.mu.Lock()
	f.sets = append(f.sets, pods)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// waitPods waits until the last set satisfies ok.
func (f *fakePods) waitPods(t *testing.T, what string, ok func([]*corev1.Pod) bool) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		f.mu.Lock()
		done := len(f.sets) > 0 && ok(f.sets[len(f.sets)-1])
		f.mu.Unlock()
		if done {
			return
		}
		select {
		case <-f.kick:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("pods never %s", what)
		}
	}
}

func TestSessionFeedsPodsAndReportsStatus(t *testing.T) {
	c := newCluster(t)
	a := newAgent(t, c, c.ca.Token(), t.TempDir())
	j, err := a.join(ctxT(t), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer j.conn.Close()
	a.client = api.NewNodeClient(j.conn)
	fake := &fakePods{kick: make(chan struct{}, 1)}
	a.pods = fake
	a.rep = newReporter(a.client, a.nodeReport(func(context.Context) string { return "containerd://test" }), a.lg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.runSessions(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Error("runSessions did not return")
		}
	}()

	fake.waitPods(t, "arrived empty", func(p []*corev1.Pod) bool { return len(p) == 0 })
	for _, tc := range []struct{ name, node string }{{"mine", "n1"}, {"theirs", "n2"}} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: "default"},
			Spec:       corev1.PodSpec{NodeName: tc.node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if _, err := c.admin.Pods("default").Create(ctxT(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var uid types.UID
	fake.waitPods(t, "held pod mine", func(p []*corev1.Pod) bool {
		if len(p) == 1 && p[0].Name == "mine" {
			uid = p[0].UID
			return true
		}
		return false
	})
	n, err := c.admin.Nodes().Get(ctxT(t), "n1", metav1.GetOptions{})
	if err != nil || n.Status.NodeInfo.ContainerRuntimeVersion != "containerd://test" {
		t.Errorf("Node n1 = %+v, %v; want it reported", n.Status.NodeInfo, err)
	}

	a.rep.PodStatus(types.NamespacedName{Namespace: "default", Name: "mine"}, uid, corev1.PodStatus{Phase: corev1.PodRunning})
	deadline := time.Now().Add(testTimeout)
	for {
		p, err := c.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod status never written (last: %v, %v)", p.Status.Phase, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestApplyDetectsGap(t *testing.T) {
	fake := &fakePods{kick: make(chan struct{}, 1)}
	a := &agent{lg: slog.New(slog.DiscardHandler), pods: fake}
	st := &state{objects: map[objKey][]byte{}}
	pod := []byte(`{"metadata":{"name":"p","namespace":"default"}}`)
	steps := []struct {
		msg     *api.SessionMessage
		wantErr error
		wantRev int64
		pods    int
	}{
		{&api.SessionMessage{Type: api.SessionMessage_COMPLETE, Revision: 5, Changes: []*api.Change{
			{Action: api.Change_PUT, Kind: api.ObjectKind_OBJECT_KIND_POD, Namespace: "default", Name: "p", Object: pod}}}, nil, 5, 1},
		{&api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: 5, Revision: 7}, nil, 7, 1},
		{&api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: 7, Revision: 9, Changes: []*api.Change{
			{Action: api.Change_DELETE, Kind: api.ObjectKind_OBJECT_KIND_POD, Namespace: "default", Name: "p", Object: pod}}}, nil, 9, 0},
		{&api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: 10, Revision: 12}, nodeclient.ErrGap, 0, 0},
	}
	for i, s := range steps {
		err := a.apply(st, s.msg)
		if !errors.Is(err, s.wantErr) || st.session.Revision() != s.wantRev || len(st.pods(a.lg)) != s.pods {
			t.Errorf("step %d: apply() = %v, revision %d, %d pods; want %v, %d, %d", i, err, st.session.Revision(), len(st.pods(a.lg)), s.wantErr, s.wantRev, s.pods)
		}
	}
}
