package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// dial serves a DIAL request: it connects to the pod's port and relays
// stdin frames to the connection and the connection's bytes as stdout
// frames, until the pod ends its side (the result then follows) or the
// server ends the session (ctx ends, closing the connection).
func (s *session) dial(ctx context.Context, st pods.Streamer, pod types.NamespacedName) *api.TunnelResult {
	d, ok := st.(Dialer)
	if !ok {
		return &api.TunnelResult{Code: api.TunnelResult_CODE_UNSUPPORTED, Message: "port forwarding and proxying are not supported by this node"}
	}
	o := s.req.GetDial()
	if o.GetPort() < 1 || o.GetPort() > 65535 {
		return &api.TunnelResult{Code: api.TunnelResult_CODE_INVALID, Message: fmt.Sprintf("invalid port %d", o.GetPort())}
	}
	conn, err := d.DialPod(ctx, pod, int(o.GetPort()), o.GetLoopback())
	if err != nil {
		return resultOf(0, err)
	}
	// Closing the connection unblocks both copies when the server ends
	// the session first.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	go func() {
		if _, err := io.Copy(conn, s.stdinR); err == nil {
			closeWrite(conn) // the client half-closed: so does the pod's peer
		}
	}()
	_, err = io.Copy(&frameWriter{ctx: ctx, sendc: s.sendc}, conn)
	if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		return &api.TunnelResult{Code: api.TunnelResult_CODE_ERROR, Message: err.Error()}
	}
	return &api.TunnelResult{}
}

// closeWrite half-closes c when it can, else closes it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
