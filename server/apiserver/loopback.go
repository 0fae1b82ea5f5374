package apiserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
)

// Controllers, the scheduler, the node service and other in-process
// components reach the API through a loopback: the same handler,
// validation, authorization and watch code as remote clients, over
// in-memory connections instead of TCP and TLS. Each connection carries
// the identity its client was made for (LoopbackUser by default); only
// code in this process can dial it.

// LoopbackUser is the identity of in-process clients.
var LoopbackUser = auth.User{Name: "system:minik-loopback", Groups: []string{auth.GroupMasters, auth.GroupAuthenticated}}

type loopbackKey struct{}

// userConn is the server end of a loopback connection and its identity.
type userConn struct {
	net.Conn
	user auth.User
}

// pipeListener is a net.Listener whose connections are in-memory pipes
// made by dial.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dialAs returns a dialer whose connections run as u.
func (l *pipeListener) dialAs(u auth.User) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) { return l.dial(ctx, u) }
}

func (l *pipeListener) dial(ctx context.Context, u auth.User) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- userConn{Conn: server, user: u}:
		return client, nil
	case <-l.closed:
		return nil, errors.New("loopback: server stopped")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "loopback" }

// ServeLoopback serves the API to in-process clients until ctx ends and
// returns the client configuration that reaches it as LoopbackUser. Call
// it once, before LoopbackConfig.
func (s *Server) ServeLoopback(ctx context.Context) *rest.Config {
	l := newPipeListener()
	srv := &http.Server{
		Handler: s,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if uc, ok := c.(userConn); ok {
				return context.WithValue(ctx, loopbackKey{}, uc.user)
			}
			return ctx
		},
	}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		srv.Close()
		l.Close()
	}()
	s.loopMu.Lock()
	s.loop = l
	s.loopMu.Unlock()
	return s.LoopbackConfig(LoopbackUser)
}

// LoopbackConfig is a client configuration that reaches the loopback as
// u, so that u's authorization applies, asking for protobuf (clients built
// on a JSON-only serializer must set their ContentConfig). It needs
// ServeLoopback first.
func (s *Server) LoopbackConfig(u auth.User) *rest.Config {
	s.loopMu.Lock()
	l := s.loop
	s.loopMu.Unlock()
	if l == nil {
		panic("apiserver: LoopbackConfig before ServeLoopback")
	}
	return &rest.Config{
		Host: "http://loopback",
		Dial: l.dialAs(u),
		// In-process clients speak protobuf: cheaper to encode and decode
		// than JSON, and watch events are encoded once for all of them.
		ContentConfig: rest.ContentConfig{
			ContentType:        protobufType,
			AcceptContentTypes: protobufType + ",application/json",
		},
		QPS:   -1,
		Burst: -1,
	}
}

// loopbackUser is the identity of a request that came over the loopback.
func loopbackUser(r *http.Request) (auth.User, bool) {
	u, ok := r.Context().Value(loopbackKey{}).(auth.User)
	if ok && !u.InGroup(auth.GroupAuthenticated) {
		u.Groups = append(u.Groups[:len(u.Groups):len(u.Groups)], auth.GroupAuthenticated)
	}
	return u, ok
}
