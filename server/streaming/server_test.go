package streaming_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/streaming"
)

// rawClient is a Tunnel client that calls as node, for protocol tests.
func (h *harness) rawClient(node string) api.TunnelClient {
	h.t.Helper()
	conn, err := grpc.NewClient("passthrough:///tunnel",
		grpc.WithContextDialer(h.dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return api.NewTunnelClient(conn)
}

func asNode(node string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	_ = cancel // ends with the test process; every call here is short
	return metadata.AppendToOutgoingContext(ctx, nodeKey, node)
}

func TestConnectIdentity(t *testing.T) {
	h := newHarness(t)
	c := h.rawClient("n1")
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		hello string
		want  codes.Code
	}{
		{"other name", asNode("n1"), "n2", codes.PermissionDenied},
		{"no identity", context.Background(), "n1", codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(tc.ctx, waitTimeout)
			defer cancel()
			s, err := c.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s.Send(&api.TunnelHello{NodeName: tc.hello})
			_, err = s.Recv()
			if status.Code(err) != tc.want {
				t.Errorf("Connect Recv = %v, want code %v", err, tc.want)
			}
		})
	}
	if h.srv.Connected("n1") || h.srv.Connected("n2") {
		t.Errorf("a refused node counts as connected")
	}
}

// TestStreamOtherNode checks that a node cannot take over another node's
// session, nor open one that does not exist.
func TestStreamOtherNode(t *testing.T) {
	h := newHarness(t)
	// n1's control stream, held by hand: it sees the request id.
	c := h.rawClient("n1")
	ctrl, err := c.Connect(asNode("n1"))
	if err != nil {
		t.Fatal(err)
	}
	ctrl.Send(&api.TunnelHello{NodeName: "n1"})
	h.waitConnected("n1")
	h.addPod("p", "n1", "c")
	respc := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, h.url("p", "log", url.Values{}), nil)
		resp, err := h.http.Client().Do(req)
		if err != nil {
			t.Error(err)
			close(respc)
			return
		}
		respc <- resp
	}()
	req, err := ctrl.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if req.GetKind() != api.TunnelKind_TUNNEL_KIND_LOGS || req.GetPod() != "p" || req.GetContainer() != "c" || req.GetPodUid() != "uid-p" {
		t.Errorf("request = %v, want logs of default/p container c", req)
	}
	open := &api.TunnelFrame{Frame: &api.TunnelFrame_Open{Open: &api.TunnelOpen{RequestId: req.GetId()}}}
	for _, tc := range []struct {
		node string
		open *api.TunnelFrame
	}{
		{"n2", open},
		{"n1", &api.TunnelFrame{Frame: &api.TunnelFrame_Open{Open: &api.TunnelOpen{RequestId: "nope"}}}},
	} {
		s, err := c.Stream(asNode(tc.node))
		if err != nil {
			t.Fatal(err)
		}
		s.Send(tc.open)
		if _, err := s.Recv(); status.Code(err) != codes.NotFound {
			t.Errorf("Stream as %s = %v, want NotFound", tc.node, err)
		}
	}
	// The rightful node still gets the session.
	s, err := c.Stream(asNode("n1"))
	if err != nil {
		t.Fatal(err)
	}
	s.Send(open)
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_Stdout{Stdout: []byte("ok\n")}})
	s.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_Result{Result: &api.TunnelResult{}}})
	resp := recv(t, respc, "the log response")
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET log = %d %q, want 200 %q", resp.StatusCode, body, "ok\n")
	}
}

// TestAgentReconnects restarts the gRPC server under a running agent.
func TestAgentReconnects(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{logs: func(ctx context.Context, pod types.NamespacedName, c string, opts *corev1.PodLogOptions, w io.Writer) error {
		_, err := io.WriteString(w, "back\n")
		return err
	}})
	h.mu.Lock()
	old := h.grpc
	h.mu.Unlock()
	old.Stop()
	deadline := time.Now().Add(waitTimeout)
	for h.srv.Connected("n1") {
		if time.Now().After(deadline) {
			t.Fatal("node still connected after the server stopped")
		}
		time.Sleep(time.Millisecond)
	}
	h.startGRPC()
	h.waitConnected("n1")
	h.addPod("p", "n1", "c")
	resp := h.get(context.Background(), h.url("p", "log", nil))
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "back\n" {
		t.Errorf("GET log after reconnect = %d %q, want %q", resp.StatusCode, body, "back\n")
	}
}

func TestPeerNodeNameWithoutTLS(t *testing.T) {
	if _, err := streaming.PeerNodeName(context.Background()); err != streaming.ErrNotNode {
		t.Errorf("PeerNodeName(no peer) = %v, want ErrNotNode", err)
	}
}
