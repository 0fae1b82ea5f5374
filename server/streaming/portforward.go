package streaming

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// portForwardProtocol is the SPDY port forwarding protocol kubectl speaks.
const portForwardProtocol = "portforward.k8s.io"

// Stream headers of the port forwarding protocol.
const (
	pfStreamType = "streamType" // "data" or "error"
	pfPort       = "port"
	pfRequestID  = "requestID"
)

// servePortForward serves pods/portforward over SPDY/3.1, plain or
// tunneled in a WebSocket (subprotocol SPDY/3.1+portforward.k8s.io, what
// kubectl tries first): each pair of streams (data and error, one
// requestID) is one connection to the pod's localhost:port, made by the
// node's agent inside the pod's network namespace. Other WebSocket
// protocols (the older v4.channel.k8s.io port forwarding) get 400 before
// any upgrade, which makes a client fall back to SPDY.
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request, pod *corev1.Pod) {
	if !methodAllowed(w, r, "portforward", http.MethodGet, http.MethodPost) {
		return
	}
	node, err := nodeOf(pod)
	if err != nil {
		writeStatus(w, err)
		return
	}
	ws := wsstream.IsWebSocketRequest(r)
	if ws && !offersSPDYTunnel(r) {
		writeStatus(w, apierrors.NewBadRequest("port forwarding over WebSocket is served as "+spdyTunnelProtocol+" only"))
		return
	}
	if !s.Connected(node) {
		writeStatus(w, tunnelError(node, ErrNodeNotConnected))
		return
	}
	pf := &portForwarder{s: s, node: node, pod: pod, pairs: map[string]*streamPair{}}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	pf.ctx = ctx
	var conn httpstream.Connection
	if ws {
		if conn, err = upgradeSPDYTunnel(w, r, pf.onStream); err != nil {
			return // the upgrader answered the client
		}
	} else {
		if _, err := httpstream.Handshake(r, w, []string{portForwardProtocol}); err != nil {
			return // Handshake answered the client
		}
		if conn = spdy.NewResponseUpgrader().UpgradeResponse(w, r, pf.onStream); conn == nil {
			return
		}
	}
	defer conn.Close()
	conn.SetIdleTimeout(streamIdleTimeout)
	select {
	case <-conn.CloseChan():
	case <-ctx.Done():
	}
	cancel()
	pf.wg.Wait()
}

// portForwarder pairs one connection's streams and forwards each pair.
type portForwarder struct {
	s    *Server
	node string
	pod  *corev1.Pod
	ctx  context.Context
	wg   sync.WaitGroup

	mu    sync.Mutex
	pairs map[string]*streamPair // guarded by mu; requestID → streams so far
}

// streamPair is the data and error stream of one forwarded connection.
type streamPair struct {
	port        int
	data, error httpstream.Stream
}

// onStream takes one stream the client created; the second of a pair
// starts the forwarding.
func (pf *portForwarder) onStream(st httpstream.Stream, _ <-chan struct{}) error {
	h := st.Headers()
	port, err := strconv.ParseUint(h.Get(pfPort), 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("invalid port %q", h.Get(pfPort))
	}
	id := h.Get(pfRequestID)
	pf.mu.Lock()
	defer pf.mu.Unlock()
	p := pf.pairs[id]
	if p == nil {
		p = &streamPair{port: int(port)}
		pf.pairs[id] = p
	}
	switch h.Get(pfStreamType) {
	case "data":
		if p.data != nil {
			return fmt.Errorf("request %q has two data streams", id)
		}
		p.data = st
	case "error":
		if p.error != nil {
			return fmt.Errorf("request %q has two error streams", id)
		}
		p.error = st
	default:
		return fmt.Errorf("invalid stream type %q", h.Get(pfStreamType))
	}
	if p.data != nil && p.error != nil {
		delete(pf.pairs, id)
		pf.wg.Add(1)
		go func() {
			defer pf.wg.Done()
			pf.forward(p)
		}()
	}
	return nil
}

// forward relays one pair to the pod's port until either side ends.
func (pf *portForwarder) forward(p *streamPair) {
	defer p.error.Close()
	defer p.data.Close()
	c, err := pf.s.dialPod(pf.ctx, pf.node, pf.pod.Namespace, pf.pod.Name, string(pf.pod.UID), p.port, true)
	if err != nil {
		fmt.Fprintf(p.error, "error forwarding port %d to pod %s, uid %v: %v", p.port, pf.pod.Name, pf.pod.UID, statusOf(err).Message)
		return
	}
	defer c.Close()
	go func() {
		if _, err := io.Copy(c, p.data); err == nil {
			closeWrite(c)
		}
	}()
	if _, err := io.Copy(p.data, c); err != nil && pf.ctx.Err() == nil {
		fmt.Fprintf(p.error, "error forwarding port %d to pod %s, uid %v: %v", p.port, pf.pod.Name, pf.pod.UID, err)
	}
}

// closeWrite half-closes c, a tunnel connection.
func closeWrite(c interface{ Close() error }) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
