// Package tlsmux serves several protocols on one TLS port: it accepts
// connections, completes their TLS handshakes and hands each to a
// listener chosen by the ALPN protocol the handshake negotiated.
//
// minik's servers use it to give agents' gRPC connections (which offer
// api.NodeProtocol) to a gRPC server with its own HTTP/2 transport, and
// everything else (kubectl, client-go, older agents) to the API's
// http.Server, on the same port.
//
// The listeners it hands out return *tls.Conn whose handshake is done, so
// that servers reading the connection state (net/http for ALPN "h2" and
// r.TLS) see it as if they had shaken hands themselves.
package tlsmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// DefaultHandshakeTimeout is how long a connection may take to complete
// its TLS handshake when Config.HandshakeTimeout is zero.
const DefaultHandshakeTimeout = 10 * time.Second

// Bounds of the wait after a failed Accept (e.g. out of file descriptors).
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// Config configures a Mux.
type Config struct {
	// TLS is the server configuration every connection is handshaken
	// with. Its NextProtos must list the protocols given to Match, in the
	// order of the server's preference.
	TLS *tls.Config
	// HandshakeTimeout bounds each handshake (default
	// DefaultHandshakeTimeout); a client that connects and stays silent
	// is dropped after it, without holding up others.
	HandshakeTimeout time.Duration
	Logger           *slog.Logger
}

// Mux accepts TLS connections on one listener and routes them by ALPN
// protocol. Match and Default are called before Serve; Serve and Close are
// safe to call concurrently.
type Mux struct {
	ln      net.Listener
	cfg     *tls.Config
	timeout time.Duration
	lg      *slog.Logger

	byProto map[string]*connListener // set up before Serve, read-only after
	other   *connListener

	// ctx ends when Close is called: it aborts handshakes in progress
	// and hand-overs no server takes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // handshakes in progress
}

// New returns a Mux that accepts connections on ln.
func New(ln net.Listener, cfg Config) *Mux {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mux{
		ln:      ln,
		cfg:     cfg.TLS,
		timeout: cfg.HandshakeTimeout,
		lg:      cfg.Logger.With("component", "tlsmux"),
		byProto: map[string]*connListener{},
		other:   newConnListener(ln.Addr()),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// Match returns the listener of the connections that negotiated the ALPN
// protocol proto. Calling it twice with one protocol returns the same
// listener. It must be called before Serve.
func (m *Mux) Match(proto string) net.Listener {
	l, ok := m.byProto[proto]
	if !ok {
		l = newConnListener(m.ln.Addr())
		m.byProto[proto] = l
	}
	return l
}

// Default returns the listener of the connections that negotiated no
// protocol given to Match (or none at all).
func (m *Mux) Default() net.Listener { return m.other }

// Serve accepts connections until Close is called, handshaking each on a
// goroutine of its own. It returns nil after Close, once the handshakes in
// progress have ended, or the error of the underlying listener if it was
// closed by someone else. Failures of Accept that may pass (such as
// running out of file descriptors) are retried after a growing wait.
//
// The listeners from Match and Default stay open after Serve returns:
// their servers close them.
func (m *Mux) Serve() error {
	defer m.wg.Wait()
	var delay time.Duration
	for {
		raw, err := m.ln.Accept()
		if err == nil {
			delay = 0
			m.wg.Add(1)
			go m.handshake(raw)
			continue
		}
		if m.ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("tlsmux: accepting: %w", err)
		}
		delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
		m.lg.Warn("accepting a connection failed; retrying", "err", err, "delay", delay)
		select {
		case <-time.After(delay):
		case <-m.ctx.Done():
			return nil
		}
	}
}

// Close stops accepting, closes the underlying listener and aborts the
// handshakes in progress. Connections already handed over are left to
// their servers.
func (m *Mux) Close() error {
	m.cancel()
	return m.ln.Close()
}

// handshake completes raw's TLS handshake and hands the connection to the
// listener of the negotiated protocol.
func (m *Mux) handshake(raw net.Conn) {
	defer m.wg.Done()
	conn := tls.Server(raw, m.cfg)
	ctx, cancel := context.WithTimeout(m.ctx, m.timeout)
	err := conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// As net/http does, at debug level: port scanners and clients
		// that do not trust the CA are routine.
		m.lg.Debug("tls handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	l, ok := m.byProto[conn.ConnectionState().NegotiatedProtocol]
	if !ok {
		l = m.other
	}
	l.deliver(m.ctx, conn)
}

// connListener is a net.Listener of the connections a Mux hands over.
type connListener struct {
	addr   net.Addr
	conns  chan *tls.Conn // unbuffered: a connection waits for Accept
	closed chan struct{}
	once   sync.Once
}

var _ net.Listener = (*connListener)(nil)

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan *tls.Conn), closed: make(chan struct{})}
}

// Accept returns the next connection handed over, a *tls.Conn whose
// handshake is done, or net.ErrClosed once the listener is closed.
func (l *connListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept fail; connections still being handed over are
// closed. It may be called more than once.
func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the address of the Mux's listener.
func (l *connListener) Addr() net.Addr { return l.addr }

// deliver waits for Accept to take conn, and closes conn instead if the
// listener is closed or ctx ends first.
func (l *connListener) deliver(ctx context.Context, conn *tls.Conn) {
	select {
	case l.conns <- conn:
	case <-l.closed:
		conn.Close()
	case <-ctx.Done():
		conn.Close()
	}
}
