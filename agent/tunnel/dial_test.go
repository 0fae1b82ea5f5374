package tunnel_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/agent/tunnel"
	"github.com/minik-dev/minik/api"
)

// The pod manager serves dial and attach requests.
var (
	_ tunnel.Dialer   = (*pods.Manager)(nil)
	_ tunnel.Attacher = (*pods.Manager)(nil)
)

// dialStreamer dials a 127.0.0.1 listener standing in for the pod.
type dialStreamer struct {
	fakeStreamer
	addr string
	got  chan int
}

func (d *dialStreamer) DialPod(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error) {
	d.got <- port
	var dl net.Dialer
	return dl.DialContext(ctx, "tcp", d.addr)
}

// upperOnce answers one connection with its input upper-cased.
func upperOnce(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		in, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(in))
	}()
	return lis.Addr().String()
}

// openDial sends a dial request and returns its data stream after the
// open frame.
func openDial(t *testing.T, srv *scriptServer, port int32) api.Tunnel_StreamServer {
	t.Helper()
	srv.reqs <- &api.TunnelRequest{Id: "d1", Kind: api.TunnelKind_TUNNEL_KIND_DIAL, Namespace: "default", Pod: "p",
		Dial: &api.TunnelDialOptions{Port: port, Loopback: true}}
	s := recv(t, srv.streams, "the data stream")
	if f, err := s.Recv(); err != nil || f.GetOpen().GetRequestId() != "d1" {
		t.Fatalf("first frame = %v, %v, want open d1", f, err)
	}
	return s
}

func TestDialSession(t *testing.T) {
	srv := newScript()
	st := &dialStreamer{addr: upperOnce(t), got: make(chan int, 1)}
	start(t, srv, st)
	recv(t, srv.hellos, "hello")
	s := openDial(t, srv, 8080)
	if p := recv(t, st.got, "the dial"); p != 8080 {
		t.Errorf("dialed port %d, want 8080", p)
	}
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_Stdin{Stdin: []byte("hello ")}})
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_Stdin{Stdin: []byte("pod")}})
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_StdinEof{StdinEof: true}})
	var out bytes.Buffer
	for {
		f, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv = %v before the result", err)
		}
		out.Write(f.GetStdout())
		if r := f.GetResult(); r != nil {
			if r.GetCode() != api.TunnelResult_CODE_OK {
				t.Errorf("result = %v, want OK", r)
			}
			break
		}
	}
	if out.String() != "HELLO POD" {
		t.Errorf("relayed answer = %q, want HELLO POD", out.String())
	}
}

func TestDialSessionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   pods.Streamer
		port int32
		want api.TunnelResult_Code
	}{
		{"no dialer", &fakeStreamer{}, 80, api.TunnelResult_CODE_UNSUPPORTED},
		{"bad port", &dialStreamer{got: make(chan int, 1)}, 70000, api.TunnelResult_CODE_INVALID},
		{"refused", &dialStreamer{addr: "127.0.0.1:1", got: make(chan int, 1)}, 1, api.TunnelResult_CODE_ERROR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScript()
			start(t, srv, tc.st)
			recv(t, srv.hellos, "hello")
			s := openDial(t, srv, tc.port)
			f, err := s.Recv()
			if err != nil || f.GetResult().GetCode() != tc.want {
				t.Errorf("frame = %v, %v, want a %v result", f, err, tc.want)
			}
		})
	}
}
