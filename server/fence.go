package server

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/scheduler"
)

// fenced returns a copy of cfg whose requests fail once ctx ends: when a
// server stops leading, its control loops send nothing more, even from
// goroutines still winding down, so they cannot write beside a new leader.
func fenced(ctx context.Context, cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return fence{ctx: ctx, next: rt} })
	return c
}

// fencedBind binds pods in process as the loopback user, refusing once
// ctx ends, as the requests of a fenced client are.
func fencedBind(ctx context.Context, api *apiserver.Server) scheduler.BindFunc {
	return func(bctx context.Context, b *corev1.Binding) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("binding of pod %s/%s refused: this server no longer leads: %w", b.Namespace, b.Name, err)
		}
		return api.BindPod(bctx, apiserver.LoopbackUser, b)
	}
}

type fence struct {
	ctx  context.Context
	next http.RoundTripper
}

func (f fence) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := f.ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %s refused: this server no longer leads: %w", r.Method, r.URL.Path, err)
	}
	return f.next.RoundTrip(r)
}
