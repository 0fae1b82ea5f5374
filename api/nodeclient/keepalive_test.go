package nodeclient

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/minik-dev/minik/api"
)

// silencer forwards TCP connections to a server until silence is called:
// from then on the connections it holds carry nothing either way but stay
// open, as a half-open connection does, while new ones are forwarded.
type silencer struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []*atomic.Bool // per held connection: silenced
}

func newSilencer(t *testing.T, target string) *silencer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silencer{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go s.serve(t)
	return s
}

func (s *silencer) serve(t *testing.T) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", s.target)
		if err != nil {
			c.Close()
			continue
		}
		t.Cleanup(func() { c.Close(); up.Close() })
		silenced := &atomic.Bool{}
		s.mu.Lock()
		s.conns = append(s.conns, silenced)
		s.mu.Unlock()
		go forward(up, c, silenced)
		go forward(c, up, silenced)
	}
}

// forward copies src to dst, dropping what it reads once silenced.
func forward(dst io.Writer, src io.Reader, silenced *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !silenced.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *silencer) silence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Store(true)
	}
}

type heartbeatServer struct{ api.UnimplementedNodeServer }

func (heartbeatServer) Heartbeat(context.Context, *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	return &api.HeartbeatResponse{}, nil
}

// A node connection whose peer went silent is given up within its
// keepalive, and the calls after go over a new one. Without keepalive
// every call would time out on the silent connection for good. The test
// takes KeepaliveTime+KeepaliveTimeout.
func TestSilentConnectionIsReplaced(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{PermitWithoutStream: true}))
	api.RegisterNodeServer(gs, heartbeatServer{})
	go gs.Serve(ln)
	defer gs.Stop()
	proxy := newSilencer(t, ln.Addr().String())
	conn, err := grpc.NewClient(proxy.ln.Addr().String(), ConnOptions(insecure.NewCredentials())...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := api.NewNodeClient(conn)
	beat := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.Heartbeat(ctx, &api.HeartbeatRequest{Ready: true})
		return err
	}
	if err := beat(); err != nil {
		t.Fatalf("Heartbeat() = %v", err)
	}
	proxy.silence()
	if err := beat(); err == nil {
		t.Fatal("Heartbeat() over the silenced connection succeeded")
	}
	limit := KeepaliveTime + KeepaliveTimeout + 10*time.Second
	deadline := time.Now().Add(limit)
	for {
		err := beat()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Heartbeat() = %v %v after the connection went silent; want a new connection", err, limit)
		}
	}
}
