package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/server/internal/tlsmux"
)

// errNotTLS means a connection reached the gRPC server without going
// through the TLS handshake of the HTTPS port.
var errNotTLS = errors.New("server: connection is not TLS")

// httpsPort serves the HTTPS port: agents' gRPC connections (those that
// negotiated api.NodeProtocol) with gRPC's own HTTP/2 transport, all
// others (kubectl, client-go, agents that only offer h2) with the API's
// http.Server, whose handler passes gRPC requests to the same gRPC server
// by their Content-Type.
type httpsPort struct {
	mux  *tlsmux.Mux
	grpc *grpc.Server
	http *http.Server

	grpcLn    *nodeConns
	httpLn    net.Listener
	closeOnce sync.Once
}

// portTLSConfig returns cfg with api.NodeProtocol offered first, so that
// agents that offer it get it. Client certificate checks are cfg's.
func portTLSConfig(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	cfg.NextProtos = append([]string{api.NodeProtocol}, slices.DeleteFunc(cfg.NextProtos, func(p string) bool {
		return p == api.NodeProtocol
	})...)
	return cfg
}

// Deadlines of the API's HTTP server, as kube-apiserver sets them but
// shorter for headers. There is no read or write timeout for a whole
// request: watches, logs -f and exec streams last as long as they do, and
// a read deadline on an HTTP/1 connection would cut them. Request bodies
// have a deadline of their own (apiserver.Config.BodyTimeout), and
// connections that refuse their credentials are closed at once.
const (
	// readHeaderTimeout bounds the reading of a request's headers, from
	// the end of the TLS handshake or of the idle wait.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a keep-alive connection with no request for this
	// long (an HTTP/2 one without streams).
	idleTimeout = 90 * time.Second
)

// newAPIServer returns the http.Server behind the HTTPS port, serving h
// with the given deadlines (readHeaderTimeout and idleTimeout in Run).
func newAPIServer(h http.Handler, header, idle time.Duration, lg *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: header,
		IdleTimeout:       idle,
		ErrorLog:          slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
	}
}

// newHTTPSPort returns an httpsPort that accepts connections on ln,
// handshakes them with cfg and serves them with gs (created with
// handshakenCredentials) and srv.
func newHTTPSPort(ln net.Listener, cfg *tls.Config, gs *grpc.Server, srv *http.Server, lg *slog.Logger) *httpsPort {
	cfg = portTLSConfig(cfg)
	// net/http sets up HTTP/2 in Serve only when its TLSConfig offers h2;
	// it also writes to that config, which the mux reads meanwhile.
	srv.TLSConfig = cfg.Clone()
	mux := tlsmux.New(ln, tlsmux.Config{TLS: cfg, Logger: lg})
	return &httpsPort{
		mux: mux, grpc: gs, http: srv,
		grpcLn: newNodeConns(mux.Match(api.NodeProtocol)),
		httpLn: mux.Default(),
	}
}

// Serve serves the port until Shutdown is called, and returns once the
// accept loop and both servers have ended: nil after Shutdown; else a
// failure of one of them, which stops the others at once.
func (p *httpsPort) Serve() error {
	errc := make(chan error, 3)
	serve := func(f func() error) {
		err := f()
		if err != nil {
			p.close()
		}
		errc <- err
	}
	go serve(p.mux.Serve)
	go serve(func() error {
		err := p.grpc.Serve(p.grpcLn)
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serving gRPC: %w", err)
		}
		return nil
	})
	go serve(func() error {
		err := p.http.Serve(p.httpLn)
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving HTTPS: %w", err)
		}
		return nil
	})
	return errors.Join(<-errc, <-errc, <-errc)
}

// Shutdown stops accepting connections and lets the requests and streams
// in progress end until ctx does; then it closes what is left. It returns
// once both servers have stopped.
func (p *httpsPort) Shutdown(ctx context.Context) {
	p.mux.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.http.Shutdown(ctx); err != nil {
			p.http.Close()
		}
	})
	wg.Go(func() {
		stopped := make(chan struct{})
		go func() { p.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			// Stop waits for connections whose client has not sent the
			// HTTP/2 preface yet; closing them ends that wait.
			p.grpcLn.closeAll()
			p.grpc.Stop()
			<-stopped
		}
	})
	wg.Wait()
}

// close stops everything at once, after a failure.
func (p *httpsPort) close() {
	p.closeOnce.Do(func() {
		p.mux.Close()
		p.http.Close()
		p.grpcLn.closeAll()
		p.grpc.Stop()
	})
}

// nodeConns is the gRPC server's listener. It keeps the connections it
// handed over until they are closed, so that a shutdown can close them:
// grpc.Server's Stop and GracefulStop wait for a connection whose client
// has not started HTTP/2 until the connection timeout.
type nodeConns struct {
	net.Listener

	mu    sync.Mutex
	conns map[*nodeConn]struct{} // guarded by mu
}

func newNodeConns(l net.Listener) *nodeConns {
	return &nodeConns{Listener: l, conns: map[*nodeConn]struct{}{}}
}

// Accept returns the next connection, a *nodeConn. The listener it wraps
// returns only *tls.Conn; anything else is closed and skipped.
func (l *nodeConns) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*tls.Conn)
		if !ok {
			c.Close()
			continue
		}
		nc := &nodeConn{Conn: tc, l: l}
		l.mu.Lock()
		l.conns[nc] = struct{}{}
		l.mu.Unlock()
		return nc, nil
	}
}

// closeAll closes the connections still open, without a TLS close_notify
// (which could wait for a stalled peer).
func (l *nodeConns) closeAll() {
	l.mu.Lock()
	conns := slices.Collect(maps.Keys(l.conns))
	l.mu.Unlock()
	for _, c := range conns {
		c.NetConn().Close()
	}
}

// nodeConn is a connection nodeConns handed over.
type nodeConn struct {
	*tls.Conn
	l *nodeConns
}

// Close closes the connection and forgets it.
func (c *nodeConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// handshakenCredentials are the transport credentials of a gRPC server
// whose connections arrive with their TLS handshake done (from
// tlsmux.Mux): ServerHandshake reports that handshake's state, so that
// peer.FromContext yields a credentials.TLSInfo with the verified client
// certificate, as with credentials.NewTLS.
type handshakenCredentials struct{}

var _ credentials.TransportCredentials = handshakenCredentials{}

// ClientHandshake fails: the credentials are for servers only.
func (handshakenCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("server: handshaken credentials cannot dial")
}

// ServerHandshake returns conn, which must be a TLS connection (a
// *tls.Conn or a type that embeds one) whose handshake is done, with its
// TLS state.
func (handshakenCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil, nil, fmt.Errorf("connection from %s: %w", conn.RemoteAddr(), errNotTLS)
	}
	state := tc.ConnectionState()
	if !state.HandshakeComplete {
		return nil, nil, fmt.Errorf("connection from %s: handshake not done: %w", conn.RemoteAddr(), errNotTLS)
	}
	return conn, credentials.TLSInfo{
		State:          state,
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

// Info describes the protocol as credentials.NewTLS does.
func (handshakenCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2"}
}

// Clone returns the credentials, which hold no state.
func (c handshakenCredentials) Clone() credentials.TransportCredentials { return c }

// OverrideServerName does nothing: it only matters to clients.
func (handshakenCredentials) OverrideServerName(string) error { return nil }

// grpcServerOptions are the options of the gRPC server behind the HTTPS
// port. A client that completed the TLS handshake must start HTTP/2
// within tlsmux.DefaultHandshakeTimeout (gRPC's default is 120 s), so
// that a silent one does not hold a goroutine and a descriptor for long.
// Flow-control windows are fixed (see api.StreamWindow). Nodes may ping
// as often as their keepalive does (nodeclient.KeepaliveTime; gRPC's
// default policy would send them away after two pings), and a
// connection silent for nodeKeepaliveTime is pinged in turn, so that
// the sessions of a node that vanished without closing its connection
// end. creds are the connections' credentials: handshakenCredentials
// behind the port.
func grpcServerOptions(creds credentials.TransportCredentials) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(creds),
		grpc.ConnectionTimeout(tlsmux.DefaultHandshakeTimeout),
		grpc.StaticStreamWindowSize(api.StreamWindow),
		grpc.StaticConnWindowSize(api.ConnWindow),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: nodeclient.KeepaliveTime / 2, PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: nodeKeepaliveTime, Timeout: nodeclient.KeepaliveTimeout}),
	}
}

// nodeKeepaliveTime is how long a node connection may be silent before
// the server pings it; nodes heartbeat far more often.
const nodeKeepaliveTime = time.Minute
