package apiserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// testServer is an API server over a real bbolt store, served over HTTP
// without authentication.
type testServer struct {
	*Server
	store  store.Store
	url    string
	client *kubernetes.Clientset
}

func newTestServer(t *testing.T, opts ...func(*Config)) *testServer {
	t.Helper()
	st := storetest.New(t)
	cfg := Config{
		Store:            st,
		Logger:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		BookmarkInterval: 50 * time.Millisecond,
		ServiceCIDR:      "10.43.0.0/24",
		Version:          "test",
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.EnsureNamespaces(ctx); err != nil {
		t.Fatalf("EnsureNamespaces: %v", err)
	}
	if err := s.EnsureAPIServices(ctx); err != nil {
		t.Fatalf("EnsureAPIServices: %v", err)
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		cancel()
		<-done
	})
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, QPS: -1})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &testServer{Server: s, store: st, url: ts.URL, client: cs}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkMetrics fails t for each line of want that ts's metrics lack.
func (ts *testServer) checkMetrics(t *testing.T, want ...string) {
	t.Helper()
	rec := httptest.NewRecorder()
	ts.metrics.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, w := range want {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

// jsonClient is a client of ts that sends and accepts JSON, as kubectl.
func (ts *testServer) jsonClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: ts.url, QPS: -1, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newHTTPServer serves h over HTTP for the test's lifetime.
func newHTTPServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// refuseAll authenticates nobody.
type refuseAll struct{}

func (refuseAll) Authenticate(*http.Request) (auth.User, bool) { return auth.User{}, false }

func TestLoopbackClient(t *testing.T) {
	ts := newTestServer(t)
	// Remote clients are refused; the loopback is not.
	ts.cfg.Authenticator = refuseAll{}
	if _, err := ts.client.CoreV1().Namespaces().List(testContext(t), metav1.ListOptions{}); err == nil {
		t.Fatalf("remote List succeeded with an authenticator that refuses everyone")
	}
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(ts.ServeLoopback(ctx))
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("List over loopback: %v", err)
	}
	if len(list.Items) != 4 {
		t.Errorf("loopback list = %d namespaces, want 4", len(list.Items))
	}
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch over loopback: %v", err)
	}
	defer w.Stop()
	if _, err := cs.CoreV1().Pods("default").Create(ctx, testPod("a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := eventName(nextEvent(t, w)); got != "ADDED a" {
		t.Errorf("loopback watch event = %s, want ADDED a", got)
	}
}
