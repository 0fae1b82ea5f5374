package streaming

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/api"
)

// dialPod opens a DIAL session to port of pod (loopback: inside the pod's
// network namespace) on node, and returns it as a connection. Reads give
// the pod's bytes, writes send to the pod, CloseWrite half-closes, Close
// ends the session.
func (s *Server) dialPod(ctx context.Context, node, namespace, pod, uid string, port int, loopback bool) (net.Conn, error) {
	req := &api.TunnelRequest{
		Kind:      api.TunnelKind_TUNNEL_KIND_DIAL,
		Namespace: namespace, Pod: pod, PodUid: uid,
		Dial: &api.TunnelDialOptions{Port: int32(port), Loopback: loopback},
	}
	sess, err := s.open(ctx, node, req)
	if err != nil {
		return nil, tunnelError(node, err)
	}
	return &tunnelConn{sess: sess}, nil
}

// tunnelConn is a DIAL session as a net.Conn. One goroutine may read while
// others write; sends are serialized as gRPC requires.
type tunnelConn struct {
	sess *session

	rmu  sync.Mutex
	rbuf []byte // guarded by rmu; bytes received, not yet read
	rerr error  // guarded by rmu; set once the stream ended

	wmu    sync.Mutex
	closed bool // guarded by wmu
}

// Read returns the pod's bytes; io.EOF once the pod ended its side; the
// agent's error when the dial or the relay failed.
func (c *tunnelConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.rbuf) == 0 && c.rerr == nil {
		c.rbuf, c.rerr = c.recv()
	}
	if len(c.rbuf) > 0 {
		n := copy(p, c.rbuf)
		c.rbuf = c.rbuf[n:]
		return n, nil
	}
	return 0, c.rerr
}

// recv takes one frame: data, or the error that ends reading.
func (c *tunnelConn) recv() ([]byte, error) {
	f, err := c.sess.stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errNoResult
		}
		return nil, err
	}
	switch fr := f.Frame.(type) {
	case *api.TunnelFrame_Stdout:
		return fr.Stdout, nil
	case *api.TunnelFrame_Result:
		if err := resultError(fr.Result); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	return nil, nil
}

// Write sends p to the pod.
func (c *tunnelConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), stdinChunk)
		if err := c.send(&api.TunnelFrame{Frame: &api.TunnelFrame_Stdin{Stdin: append([]byte(nil), p[:n]...)}}); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// CloseWrite tells the pod no more bytes come.
func (c *tunnelConn) CloseWrite() error {
	return c.send(&api.TunnelFrame{Frame: &api.TunnelFrame_StdinEof{StdinEof: true}})
}

func (c *tunnelConn) send(f *api.TunnelFrame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	return c.sess.stream.Send(f)
}

// Close ends the session; the agent then closes its connection to the pod.
func (c *tunnelConn) Close() error {
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	c.sess.close()
	return nil
}

func (c *tunnelConn) LocalAddr() net.Addr  { return tunnelAddr{} }
func (c *tunnelConn) RemoteAddr() net.Addr { return tunnelAddr{} }

// SetDeadline and its kin are accepted and not enforced: a session ends
// with the request that opened it (its context), which bounds every wait.
func (c *tunnelConn) SetDeadline(time.Time) error      { return nil }
func (c *tunnelConn) SetReadDeadline(time.Time) error  { return nil }
func (c *tunnelConn) SetWriteDeadline(time.Time) error { return nil }

// tunnelAddr is the address of either end of a tunnel connection.
type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "tunnel" }
func (tunnelAddr) String() string  { return "tunnel" }

// DialPod opens a connection to port of pod, on the pod's IP as seen from
// its node, through the tunnel of the node's agent: the API server reaches
// the webhooks behind Services with it. The pod's node must be connected
// to this server.
func (s *Server) DialPod(ctx context.Context, pod *corev1.Pod, port int) (net.Conn, error) {
	node, err := nodeOf(pod)
	if err != nil {
		return nil, err
	}
	return s.dialPod(ctx, node, pod.Namespace, pod.Name, string(pod.UID), port, false)
}
