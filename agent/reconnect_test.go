package agent

import (
	"context"
	"path"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
)

// stallingServer answers the node's unary calls normally until stall is
// called; from then until resume, Heartbeat and UpdateStatus calls get no
// answer at all: they end only when the caller gives up, as calls held by
// a wedged server do.
type stallingServer struct {
	mu      sync.Mutex
	stalled bool
	held    chan string // methods of calls held, as they arrive
	ok      chan string // methods of calls answered
}

func newStallingServer() *stallingServer {
	return &stallingServer{held: make(chan string, 64), ok: make(chan string, 64)}
}

func (s *stallingServer) stall()  { s.set(true) }
func (s *stallingServer) resume() { s.set(false) }

func (s *stallingServer) set(v bool) {
	s.mu.Lock()
	s.stalled = v
	s.mu.Unlock()
}

func (s *stallingServer) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	method := path.Base(info.FullMethod)
	s.mu.Lock()
	stalled := s.stalled && (method == "Heartbeat" || method == "UpdateStatus")
	s.mu.Unlock()
	if stalled {
		note(s.held, method)
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	resp, err := h(ctx, req)
	if err == nil {
		note(s.ok, method)
	}
	return resp, err
}

// note records method without ever blocking the call.
func note(c chan string, method string) {
	select {
	case c <- method:
	default:
	}
}

// waitCall waits for a call of method on c, dropping others.
func waitCall(t *testing.T, c chan string, method, what string) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case m := <-c:
			if m == method {
				return
			}
		case <-deadline:
			t.Fatalf("no %s %s within %v", what, method, testTimeout)
		}
	}
}

// drain empties c.
func drain(c chan string) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// A server that stops answering while the agent reconnects must not hold
// the agent: once it answers again, the agent is back within its backoff
// and sends heartbeats.
func TestSessionReconnectsAfterTheServerStalls(t *testing.T) {
	srv := newStallingServer()
	c := newClusterWith(t, nil, grpc.UnaryInterceptor(srv.intercept))
	a := newAgent(t, c, c.ca.Token(), t.TempDir())
	j, err := a.join(ctxT(t), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer j.conn.Close()
	a.client = api.NewNodeClient(j.conn)
	a.pods = &fakePods{kick: make(chan struct{}, 1)}
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

	waitCall(t, srv.ok, "Heartbeat", "answered")
	srv.stall()
	drain(srv.ok) // the channel keeps order: stale entries precede new ones
	// The heartbeat that gets no answer ends the connection; the next
	// one starts with the node report, which is held in turn.
	waitCall(t, srv.held, "Heartbeat", "held")
	waitCall(t, srv.held, "UpdateStatus", "held")
	srv.resume()
	waitCall(t, srv.ok, "UpdateStatus", "answered")
	waitCall(t, srv.ok, "Heartbeat", "answered")
}
