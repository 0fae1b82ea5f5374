package agent

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/internal/atomicfile"
)

// renewRetry is the wait before another try after a failed renewal, at
// most; a short-lived certificate is retried sooner.
const renewRetry = 30 * time.Second

// nodeCert holds the node's client certificate. Every new TLS connection
// to a server presents the one it holds at that moment, so a renewed
// certificate serves the next reconnection while open connections (and
// the session on them) go on. Safe for concurrent use.
type nodeCert struct {
	cur atomic.Pointer[tls.Certificate]
}

func (c *nodeCert) set(cert tls.Certificate) { c.cur.Store(&cert) }

// get returns the certificate held (Leaf set), nil before set.
func (c *nodeCert) get() *tls.Certificate { return c.cur.Load() }

// getClientCertificate is the tls.Config hook: the certificate held, or
// none before one is set.
func (c *nodeCert) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if cert := c.cur.Load(); cert != nil {
		return cert, nil
	}
	return &tls.Certificate{}, nil
}

// renewCertificate renews the node's certificate at its renewal time
// (api.RenewalTime) until ctx ends: it registers again over conn, which
// presents the current certificate, so the server needs no join token,
// keeps the new pair in the data directory and hands it to new
// connections. Failures are retried; the certificate in use stays valid
// until its expiry, a third of its lifetime later.
func (a *agent) renewCertificate(ctx context.Context, conn *grpc.ClientConn) error {
	tlsDir := filepath.Join(a.cfg.DataDir, "tls")
	for {
		leaf := a.cert.get().Leaf
		wait := time.Until(api.RenewalTime(leaf))
		if err := sleep(ctx, wait); err != nil {
			return nil
		}
		if err := a.renewOnce(ctx, conn, tlsDir); err != nil {
			retry := min(renewRetry, leaf.NotAfter.Sub(leaf.NotBefore)/20)
			a.lg.Warn("renewing the node certificate; retrying", "err", err, "expires", leaf.NotAfter, "retryIn", retry)
			if err := sleep(ctx, retry); err != nil {
				return nil
			}
		}
	}
}

// renewOnce registers for a new certificate over conn and keeps it.
func (a *agent) renewOnce(ctx context.Context, conn *grpc.ClientConn, tlsDir string) error {
	password, err := nodeclient.NodePassword(a.cfg.DataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reg, err := nodeclient.Register(ctx, conn, a.cfg.Token, a.cfg.NodeName, password)
	if err != nil {
		return err
	}
	if err := a.keepCert(tlsDir, reg); err != nil {
		return err
	}
	a.lg.Info("node certificate renewed", "expires", reg.Certificate.Leaf.NotAfter)
	return nil
}

// keepCert writes reg's certificate and key to tlsDir and makes it the
// one new connections present.
func (a *agent) keepCert(tlsDir string, reg *nodeclient.Registration) error {
	if err := atomicfile.Write(filepath.Join(tlsDir, keyFile), reg.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(tlsDir, certFile), reg.CertPEM, 0o644); err != nil {
		return err
	}
	a.cert.set(reg.Certificate)
	return nil
}

// sleep waits for d (nothing if d is not positive) or ctx's end, which it
// returns.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
