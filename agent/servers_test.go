package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/pki/pkitest"
	"github.com/minik-dev/minik/store/storetest"
)

func TestServerListKeepsCurrentFirst(t *testing.T) {
	dir := t.TempDir()
	lg := slog.New(slog.NewTextHandler(t.Output(), nil))
	path := filepath.Join(dir, ServersFile)
	l, err := newServerList("https://10.0.0.1:6443", path, lg)
	if err != nil {
		t.Fatal(err)
	}
	l.set([]string{"10.0.0.3:6443", "10.0.0.2:6443"})
	want := []string{"https://10.0.0.1:6443", "https://10.0.0.3:6443", "https://10.0.0.2:6443"}
	if got := l.urls(); !slices.Equal(got, want) {
		t.Errorf("urls() = %v, want %v (the server in use first)", got, want)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "10.0.0.2:6443\n10.0.0.3:6443\n" {
		t.Errorf("kept list = %q, %v; want the servers' addresses sorted", data, err)
	}
	// A restarted agent starts from its --join server, then the kept list.
	l2, err := newServerList("https://10.0.0.1:6443", path, lg)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"https://10.0.0.1:6443", "https://10.0.0.2:6443", "https://10.0.0.3:6443"}
	if got := l2.urls(); !slices.Equal(got, want) {
		t.Errorf("after restart urls() = %v, want %v", got, want)
	}
}

// twoServers is two node services of one cluster (one CA, one store)
// behind real HTTPS servers, each telling agents both addresses.
type twoServers struct {
	ca    *pki.Authority
	urls  [2]string
	svcs  [2]*nodes.Service
	srvs  [2]*httptest.Server
	stops [2]context.CancelFunc
}

func newTwoServers(t *testing.T) *twoServers {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(t.Output(), nil))
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	ts := &twoServers{ca: ca}
	var lns [2]net.Listener
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	servers := nodes.NewServerSet(lns[0].Addr().String(), lns[1].Addr().String())
	for i := range 2 {
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
		svc, err := nodes.New(nodes.Config{Store: st, API: a, Authority: ca, Servers: servers, BatchDelay: 10 * time.Millisecond, Logger: lg})
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer()
		svc.RegisterWith(gs)
		srv := httptest.NewUnstartedServer(svc.Handler(gs, a))
		srv.Listener.Close()
		srv.Listener = lns[i]
		pkitest.StartTLS(srv, ca.ServerTLSConfig())
		ran := make(chan error, 1)
		go func() { ran <- svc.Run(ctx) }()
		stopped := false
		ts.stops[i] = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			srv.CloseClientConnections()
			srv.Close()
			select {
			case <-ran:
			case <-time.After(testTimeout):
				t.Error("node service did not stop")
			}
		}
		t.Cleanup(ts.stops[i])
		ts.urls[i], ts.svcs[i], ts.srvs[i] = srv.URL, svc, srv
	}
	return ts
}

// An agent told of two servers keeps heartbeating through the second
// when the first goes away, on the same connection object.
func TestAgentFailsOverToAnotherServer(t *testing.T) {
	ts := newTwoServers(t)
	dir := t.TempDir()
	a := &agent{
		cfg: Config{ServerURL: ts.urls[0], Token: ts.ca.Token(), DataDir: dir, NodeName: "n1", HeartbeatInterval: 50 * time.Millisecond},
		lg:  slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	var err error
	if a.servers, err = newServerList(ts.urls[0], filepath.Join(dir, ServersFile), a.lg); err != nil {
		t.Fatal(err)
	}
	j, err := a.joinRetrying(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.conn.Close()
	a.client = api.NewNodeClient(j.conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followed := make(chan error, 1)
	go func() { followed <- a.followServers(ctx, a.client) }()
	defer func() {
		cancel()
		<-followed
	}()
	second := strings.TrimPrefix(ts.urls[1], "https://")
	waitFor(t, "the server list to reach the agent", func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, ServersFile))
		return strings.Contains(string(data), second)
	})
	beat := func() error {
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		defer hcancel()
		_, err := a.client.Heartbeat(hctx, &api.HeartbeatRequest{Ready: true})
		return err
	}
	if err := beat(); err != nil {
		t.Fatalf("heartbeat through the first server: %v", err)
	}
	if _, ok := ts.svcs[0].LastHeartbeat("n1"); !ok {
		t.Fatalf("first server heard no heartbeat")
	}
	ts.stops[0]()
	waitFor(t, "a heartbeat through the second server", func() bool {
		if beat() != nil {
			return false
		}
		_, ok := ts.svcs[1].LocalHeartbeats()["n1"]
		return ok
	})

	// Restarted while its --join server is still down, the agent joins
	// through a server from the list it kept.
	again := &agent{cfg: a.cfg, lg: a.lg}
	if again.servers, err = newServerList(ts.urls[0], filepath.Join(dir, ServersFile), a.lg); err != nil {
		t.Fatal(err)
	}
	j2, err := again.joinRetrying(ctxT(t))
	if err != nil {
		t.Fatalf("joining again with the first server down: %v", err)
	}
	j2.conn.Close()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// While the --join server is down, a kept address that now serves another
// cluster is skipped, not taken as the cluster refusing the node.
func TestJoinSkipsKeptServerOfAnotherCluster(t *testing.T) {
	c := newCluster(t)
	other := newCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "https://" + ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	kept := strings.TrimPrefix(other.url, "https://") + "\n" + strings.TrimPrefix(c.url, "https://") + "\n"
	if err := os.WriteFile(filepath.Join(dir, ServersFile), []byte(kept), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &agent{
		cfg: Config{ServerURL: down, Token: c.ca.Token(), DataDir: dir, NodeName: "n1", HeartbeatInterval: 100 * time.Millisecond},
		lg:  slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	if a.servers, err = newServerList(down, filepath.Join(dir, ServersFile), a.lg); err != nil {
		t.Fatal(err)
	}
	j, err := a.joinRetrying(ctxT(t))
	if err != nil {
		t.Fatalf("joinRetrying = %v, want joined through the kept server of the cluster", err)
	}
	defer j.conn.Close()
	// The node's connection gets past the address of the other cluster,
	// which accepts connections but fails the TLS handshake.
	stream, err := api.NewNodeClient(j.conn).WatchServers(ctxT(t), &api.WatchServersRequest{}, grpc.WaitForReady(true))
	if err == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		t.Fatalf("a call on the node connection = %v, want it to reach the token's cluster", err)
	}
	if got := a.servers.urls()[0]; got != c.url {
		t.Errorf("server in use = %s, want %s", got, c.url)
	}
	if caPEM, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt")); err != nil || api.CAHash(caPEM) != api.CAHash(c.ca.CAPEM()) {
		t.Errorf("the agent trusts CA %s (%v), want the token's cluster's", api.CAHash(caPEM), err)
	}

	// The --join server itself refusing is final.
	a.cfg.ServerURL = other.url
	if a.servers, err = newServerList(other.url, "", a.lg); err != nil {
		t.Fatal(err)
	}
	if _, err := a.joinRetrying(ctxT(t)); !errors.Is(err, ErrCAMismatch) {
		t.Errorf("joinRetrying through a --join server of another cluster = %v, want ErrCAMismatch", err)
	}
}
