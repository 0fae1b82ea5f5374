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

// Controllers, the scheduler and other in-process components reach the API
// through a loopback: the same handler, validation and watch code as remote
// clients, over in-memory connections instead of TCP and TLS. Requests on
// it run as LoopbackUser.

// LoopbackUser is the identity of in-process clients.
var LoopbackUser = auth.User{Name: "system:minik-loopback", Groups: []string{auth.GroupMasters, auth.GroupAuthenticated}}

type loopbackKey struct{}

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

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
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
// returns the client configuration that reaches it.
func (s *Server) ServeLoopback(ctx context.Context) *rest.Config {
	l := newPipeListener()
	srv := &http.Server{
		Handler: s,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, loopbackKey{}, true)
		},
	}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		srv.Close()
		l.Close()
	}()
	return &rest.Config{
		Host:  "http://loopback",
		Dial:  l.dial,
		QPS:   -1,
		Burst: -1,
	}
}

func isLoopback(r *http.Request) bool {
	v, _ := r.Context().Value(loopbackKey{}).(bool)
	return v
}
