package tunnel_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/agent/tunnel"
	"github.com/minik-dev/minik/api"
)

const waitTimeout = 10 * time.Second

// scriptServer is the server's end, driven by the test.
type scriptServer struct {
	api.UnimplementedTunnelServer
	hellos  chan string
	reqs    chan *api.TunnelRequest
	streams chan api.Tunnel_StreamServer
	release chan struct{} // ends every Stream call
}

func (s *scriptServer) Connect(stream api.Tunnel_ConnectServer) error {
	hello, err := stream.Recv()
	if err != nil {
		return err
	}
	s.hellos <- hello.GetNodeName()
	for {
		select {
		case req := <-s.reqs:
			if err := stream.Send(req); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

func (s *scriptServer) Stream(stream api.Tunnel_StreamServer) error {
	s.streams <- stream
	select {
	case <-s.release:
	case <-stream.Context().Done():
	}
	return nil
}

// fakeStreamer runs exec as the test says; logs are not found.
type fakeStreamer struct {
	exec func(ctx context.Context, s pods.ExecStreams) (int, error)
}

func (f *fakeStreamer) Logs(ctx context.Context, pod types.NamespacedName, c string, opts *corev1.PodLogOptions, w io.Writer) error {
	return pods.ErrNotFound
}

func (f *fakeStreamer) Exec(ctx context.Context, pod types.NamespacedName, c string, cmd []string, s pods.ExecStreams) (int, error) {
	return f.exec(ctx, s)
}

// start serves srv on bufconn and runs tunnel.Run against it.
func start(t *testing.T, srv *scriptServer, st pods.Streamer) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	api.RegisterTunnelServer(g, srv)
	go g.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///tunnel",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { done <- tunnel.Run(ctx, conn, "n1", st, lg) }()
	t.Cleanup(func() {
		close(srv.release)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run did not return after cancel")
		}
		conn.Close()
		g.Stop()
	})
}

func newScript() *scriptServer {
	return &scriptServer{
		hellos: make(chan string, 4), reqs: make(chan *api.TunnelRequest),
		streams: make(chan api.Tunnel_StreamServer, 4), release: make(chan struct{}),
	}
}

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

func TestExecSession(t *testing.T) {
	srv := newScript()
	start(t, srv, &fakeStreamer{exec: func(ctx context.Context, s pods.ExecStreams) (int, error) {
		in, err := io.ReadAll(s.Stdin)
		if err != nil {
			return 0, err
		}
		s.Stdout.Write(bytes.ToUpper(in))
		s.Stderr.Write([]byte("warn"))
		return 7, nil
	}})
	if got := recv(t, srv.hellos, "hello"); got != "n1" {
		t.Errorf("hello node = %q, want n1", got)
	}
	srv.reqs <- &api.TunnelRequest{Id: "r1", Kind: api.TunnelKind_TUNNEL_KIND_EXEC, Namespace: "default", Pod: "p", Container: "c",
		Exec: &api.TunnelExecOptions{Command: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true}}
	s := recv(t, srv.streams, "the data stream")
	f, err := s.Recv()
	if err != nil || f.GetOpen().GetRequestId() != "r1" {
		t.Fatalf("first frame = %v, %v, want open r1", f, err)
	}
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_Stdin{Stdin: []byte("ab")}})
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_Stdin{Stdin: []byte("c")}})
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_StdinEof{StdinEof: true}})
	var stdout, stderr bytes.Buffer
	for {
		f, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv = %v before the result", err)
		}
		stdout.Write(f.GetStdout())
		stderr.Write(f.GetStderr())
		if r := f.GetResult(); r != nil {
			if r.GetCode() != api.TunnelResult_CODE_OK || r.GetExitCode() != 7 {
				t.Errorf("result = %v, want exit code 7", r)
			}
			break
		}
	}
	if stdout.String() != "ABC" || stderr.String() != "warn" {
		t.Errorf("stdout, stderr = %q, %q, want %q, %q", stdout.String(), stderr.String(), "ABC", "warn")
	}
}

func TestLogsNotFound(t *testing.T) {
	srv := newScript()
	start(t, srv, &fakeStreamer{})
	recv(t, srv.hellos, "hello")
	srv.reqs <- &api.TunnelRequest{Id: "r2", Kind: api.TunnelKind_TUNNEL_KIND_LOGS, Namespace: "default", Pod: "p", Container: "c",
		Logs: &api.TunnelLogOptions{}}
	s := recv(t, srv.streams, "the data stream")
	s.Recv() // open
	f, err := s.Recv()
	if err != nil || f.GetResult().GetCode() != api.TunnelResult_CODE_NOT_FOUND {
		t.Errorf("frame = %v, %v, want a NOT_FOUND result", f, err)
	}
}

func TestRunStopsWithoutServer(t *testing.T) {
	lis := bufconn.Listen(1 << 10)
	lis.Close() // nothing answers
	conn, err := grpc.NewClient("passthrough:///tunnel",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tunnel.Run(ctx, conn, "n1", &fakeStreamer{}, nil) }()
	if err := recv(t, done, "Run to return"); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}
