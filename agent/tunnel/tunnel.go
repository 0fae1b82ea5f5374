// Package tunnel is the agent's end of the server's tunnel (api.Tunnel):
// it holds the control stream open and serves each log, exec, attach or
// dial request the server sends through it on a data stream of its own, by
// calling the pod manager's Streamer (and its Attacher and Dialer). A dial
// request relays a TCP connection to a pod, made from this node.
//
// # Streams
//
// Run keeps one Connect stream open, reconnecting with backoff. Each
// request is served concurrently: the agent opens a Stream call, sends
// the request id, then relays (one recv goroutine, one send loop) between
// the call and the Streamer until the Streamer returns; then it sends the
// result and waits for the server to end the call. Every hop blocks until
// the next takes the data, so gRPC flow control bounds memory.
package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// Attacher is an optional ability of a pods.Streamer: attaching to the
// main process of a running container. Without it attach requests fail as
// unsupported.
type Attacher interface {
	// Attach connects streams to the container's process until ctx ends
	// or the process exits. ErrNotFound (wrapped) as for Exec.
	Attach(ctx context.Context, pod types.NamespacedName, container string, streams pods.ExecStreams) error
}

// Dialer is an optional ability of a pods.Streamer: connecting to a TCP
// port of a pod on this node. Without it dial requests fail as
// unsupported.
type Dialer interface {
	// DialPod connects to port of the pod: on 127.0.0.1 inside the pod's
	// network namespace when loopback, else on the pod's IP. ErrNotFound
	// (wrapped) when the pod does not run here.
	DialPod(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error)
}

// Reconnect backoff: doubling from minBackoff to maxBackoff, reset when a
// control stream lived longer than stableAfter.
const (
	minBackoff  = 500 * time.Millisecond
	maxBackoff  = 30 * time.Second
	stableAfter = 30 * time.Second
)

type tunnel struct {
	client api.TunnelClient
	node   string
	s      pods.Streamer
	log    *slog.Logger
	wg     sync.WaitGroup // sessions
}

// Run serves the server's log and exec requests for nodeName over conn
// (a connection authenticated as that node) with s. It reconnects the
// control stream with backoff until ctx ends, and returns nil once ctx
// has ended and every session has finished.
func Run(ctx context.Context, conn grpc.ClientConnInterface, nodeName string, s pods.Streamer, lg *slog.Logger) error {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	t := &tunnel{
		client: api.NewTunnelClient(conn),
		node:   nodeName,
		s:      s,
		log:    lg.With("component", "tunnel", "node", nodeName),
	}
	defer t.wg.Wait()
	backoff := minBackoff
	for {
		start := time.Now()
		err := t.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > stableAfter {
			backoff = minBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		t.log.Warn("tunnel lost", "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// connect holds one control stream and starts a session per request.
// Sessions run on ctx, not on the stream, so they outlive a reconnect.
func (t *tunnel) connect(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := t.client.Connect(sctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&api.TunnelHello{NodeName: t.node}); err != nil {
		return err
	}
	t.log.Debug("tunnel control stream open")
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.serve(ctx, req)
		}()
	}
}

// serve answers one request on a data stream of its own.
func (t *tunnel) serve(ctx context.Context, req *api.TunnelRequest) {
	lg := t.log.With("kind", req.GetKind().String(), "pod", req.GetNamespace()+"/"+req.GetPod(), "container", req.GetContainer())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := t.client.Stream(ctx)
	if err != nil {
		lg.Warn("cannot open tunnel data stream", "err", err)
		return
	}
	open := &api.TunnelFrame{Frame: &api.TunnelFrame_Open{Open: &api.TunnelOpen{RequestId: req.GetId()}}}
	if err := stream.Send(open); err != nil {
		lg.Warn("cannot open tunnel data stream", "err", err)
		return
	}
	lg.Debug("session started")
	err = newSession(stream, req).run(ctx, cancel, t.s)
	if err != nil && !errors.Is(err, context.Canceled) {
		lg.Debug("session ended", "err", err)
	}
}
