package apiserver

import (
	"context"
	"log/slog"
	"net/http"

	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/internal/inprocess"
)

// Controllers, the scheduler, the node service and other in-process
// components reach the API through a loopback: the same handler,
// validation, authorization and watch code as remote clients, called
// directly by an http.RoundTripper instead of over a connection (see
// server/internal/inprocess). Each client carries the identity it was made for
// (LoopbackUser by default); only code in this process can use it.

// LoopbackUser is the identity of in-process clients.
var LoopbackUser = auth.User{Name: "system:minik-loopback", Groups: []string{auth.GroupMasters, auth.GroupAuthenticated}}

// ErrLoopbackStopped is what loopback clients get once the context given
// to ServeLoopback has ended.
var ErrLoopbackStopped = inprocess.ErrStopped

type loopbackKey struct{}

// ServeLoopback serves the API to in-process clients until ctx ends and
// returns the client configuration that reaches it as LoopbackUser. When
// ctx ends, watches and other streams in progress end and new requests
// fail with ErrLoopbackStopped. Call it once, before LoopbackConfig.
func (s *Server) ServeLoopback(ctx context.Context) *rest.Config {
	s.loopMu.Lock()
	s.loopCtx = ctx
	s.loopMu.Unlock()
	return s.LoopbackConfig(LoopbackUser)
}

// LoopbackConfig is a client configuration that reaches the loopback as
// u, so that u's authorization applies, asking for protobuf (clients built
// on a JSON-only serializer must set their ContentConfig). It needs
// ServeLoopback first.
func (s *Server) LoopbackConfig(u auth.User) *rest.Config {
	s.loopMu.Lock()
	ctx := s.loopCtx
	s.loopMu.Unlock()
	if ctx == nil {
		panic("apiserver: LoopbackConfig before ServeLoopback")
	}
	return &rest.Config{
		Host:      "http://loopback",
		Transport: newInProcessTransport(ctx, s, u, s.log),
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

// newInProcessTransport is the loopback transport that serves requests
// with h as user u until stop ends.
func newInProcessTransport(stop context.Context, h http.Handler, u auth.User, lg *slog.Logger) *inprocess.Transport {
	return inprocess.New(stop, h, inprocess.Options{
		Context: func(ctx context.Context) context.Context { return context.WithValue(ctx, loopbackKey{}, u) },
		Stopped: ErrLoopbackStopped,
		Logger:  lg,
	})
}

// loopbackUser is the identity of a request that came over the loopback.
func loopbackUser(r *http.Request) (auth.User, bool) {
	u, ok := r.Context().Value(loopbackKey{}).(auth.User)
	if !ok {
		return u, false
	}
	return withGroup(u, auth.GroupAuthenticated), true
}
