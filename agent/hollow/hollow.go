package hollow

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/minik-dev/minik/api/nodeclient"
)

// Config says how many hollow nodes to run and where.
type Config struct {
	// Server is the server's HTTPS address, "https://HOST:PORT".
	Server string
	// Token is the join token ("K10<hash>::server:<secret>", or the
	// secret, which pins no CA).
	Token string
	// Count is the number of nodes.
	Count int
	// NamePrefix names the nodes PREFIX-0 … PREFIX-(Count-1); default
	// "hollow".
	NamePrefix string
	// DataDir keeps the server's CA and the nodes' password.
	DataDir string
	// CPU, Memory and MaxPods are every node's capacity; default 4, 16Gi
	// and 110.
	CPU, Memory string
	MaxPods     int
	// HeartbeatInterval defaults to 10 s.
	HeartbeatInterval time.Duration
	Logger            *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Server == "" || c.Token == "" || c.DataDir == "" || c.Count <= 0 {
		return errors.New("hollow: Server, Token, DataDir and a positive Count must be set")
	}
	if c.NamePrefix == "" {
		c.NamePrefix = "hollow"
	}
	if c.CPU == "" {
		c.CPU = "4"
	}
	if c.Memory == "" {
		c.Memory = "16Gi"
	}
	if c.MaxPods <= 0 {
		c.MaxPods = 110
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	for _, q := range []string{c.CPU, c.Memory} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("hollow: capacity %q: %w", q, err)
		}
	}
	return nil
}

// hollow is what the nodes share: configuration, trust and the
// unauthenticated connection they register over.
type hollow struct {
	cfg   Config
	lg    *slog.Logger
	roots *x509.CertPool
	anon  *grpc.ClientConn
	// password is every node's node password, kept in DataDir (see
	// nodeclient.NodePassword), so that a restarted process registers its
	// nodes again.
	password string
}

// Run runs cfg.Count hollow nodes until ctx ends, and returns after they
// have all stopped. Nodes that lose the server reconnect; an error that
// retrying cannot fix (a bad or refused token, a CA that doesn't match it,
// a refused node name) stops them all and is returned, wrapping one of the
// package's errors.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	h := &hollow{cfg: cfg, lg: cfg.Logger.With("component", "hollow")}
	roots, err := retry(ctx, h.lg, func() (*x509.CertPool, error) {
		return nodeclient.TrustCA(ctx, cfg.Server, cfg.Token, cfg.DataDir, h.lg)
	})
	if err != nil {
		return err
	}
	h.roots = roots
	if h.password, err = nodeclient.NodePassword(cfg.DataDir); err != nil {
		return err
	}
	if h.anon, err = nodeclient.Dial(cfg.Server, roots, nil); err != nil {
		return err
	}
	defer h.anon.Close()
	h.lg.Info("starting hollow nodes", "count", cfg.Count, "server", cfg.Server)
	g, gctx := errgroup.WithContext(ctx)
	for i := range cfg.Count {
		n := newNode(h, fmt.Sprintf("%s-%d", cfg.NamePrefix, i))
		g.Go(func() error { return n.run(gctx) })
	}
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// permanent reports whether err is one that retrying cannot fix.
func permanent(err error) bool {
	return errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrCAMismatch) ||
		errors.Is(err, ErrTokenRefused) || errors.Is(err, ErrRegistrationRefused)
}

// retry calls f until it succeeds, fails permanently or ctx ends, waiting
// with backoff between tries.
func retry[T any](ctx context.Context, lg *slog.Logger, f func() (T, error)) (T, error) {
	b := nodeclient.NewBackoff()
	for {
		v, err := f()
		if err == nil || permanent(err) || ctx.Err() != nil {
			return v, err
		}
		lg.Warn("server not reachable yet; retrying", "err", err)
		if err := b.Wait(ctx); err != nil {
			return v, err
		}
	}
}
