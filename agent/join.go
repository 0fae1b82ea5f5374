package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
)

// Errors of joining that retrying cannot fix; test with errors.Is. They
// are the node protocol's (see nodeclient).
var (
	// ErrCAMismatch: the server's CA does not hash to the token's pin.
	ErrCAMismatch = api.ErrCAMismatch
	// ErrTokenRefused: the server refused the join token.
	ErrTokenRefused = nodeclient.ErrTokenRefused
	// ErrInvalidToken: the token is malformed.
	ErrInvalidToken = api.ErrInvalidToken
	// ErrRegistrationRefused: the server refused the registration for a
	// reason other than the token (e.g. an invalid node name).
	ErrRegistrationRefused = nodeclient.ErrRegistrationRefused
)

// PasswordFile is the file in an agent's data directory that keeps its
// node password (see nodeclient.NodePassword).
const PasswordFile = nodeclient.PasswordFile

// Files under DataDir/tls, besides nodeclient.CAFile.
const (
	certFile = "node.crt"
	keyFile  = "node.key"
)

// joined is the outcome of joining: a connection that authenticates as the
// node, and the node's configuration.
type joined struct {
	conn   *grpc.ClientConn
	config *api.NodeConfig
}

// join makes the node a member of the cluster: it trusts the server's CA
// (pinned by the token), then reuses the node certificate kept in the data
// directory or registers for a new one. Errors that retrying cannot fix
// wrap ErrCAMismatch, ErrTokenRefused or ErrInvalidToken; others (the
// server is not up yet) may be retried.
func (a *agent) join(ctx context.Context, serverURL string) (*joined, error) {
	tlsDir := filepath.Join(a.cfg.DataDir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, err
	}
	roots, err := nodeclient.TrustCA(ctx, serverURL, a.cfg.Token, tlsDir, a.lg)
	if err != nil {
		return nil, err
	}
	if cert, ok := a.keptCert(tlsDir, roots); ok {
		a.cert.set(cert)
		conn, err := a.servers.dial(roots, &a.cert)
		if err != nil {
			return nil, err
		}
		cfg, err := api.NewNodeClient(conn).Config(ctx, &api.ConfigRequest{})
		if err == nil {
			return &joined{conn: conn, config: cfg}, nil
		}
		conn.Close()
		if c := status.Code(err); c != codes.Unauthenticated && c != codes.PermissionDenied {
			return nil, err
		}
		a.lg.Warn("kept node certificate refused; registering again", "err", err)
	}
	return a.register(ctx, serverURL, tlsDir, roots)
}

// keptCert returns the node certificate kept in tlsDir if it is for this
// node, from this CA and not yet due for renewal (api.RenewalTime); one
// that is due is renewed by registering with it (register).
func (a *agent) keptCert(tlsDir string, roots *x509.CertPool) (tls.Certificate, bool) {
	cert, ok := a.validCert(tlsDir, roots)
	if !ok || !time.Now().Before(api.RenewalTime(cert.Leaf)) {
		return tls.Certificate{}, false
	}
	return cert, true
}

// validCert returns the node certificate kept in tlsDir if it is for this
// node, from this CA and not expired.
func (a *agent) validCert(tlsDir string, roots *x509.CertPool) (tls.Certificate, bool) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, certFile), filepath.Join(tlsDir, keyFile))
	if err != nil {
		return tls.Certificate{}, false
	}
	leaf := cert.Leaf
	if leaf == nil || leaf.Subject.CommonName != "system:node:"+a.cfg.NodeName {
		return tls.Certificate{}, false
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return tls.Certificate{}, false
	}
	return cert, true
}

// register asks for a node certificate with the join token and the node
// password, and keeps it. A still valid certificate of the node is
// presented too: it proves the name is this node's when the password
// alone does not (a lost data directory's password, or a node registered
// before names were bound to passwords).
func (a *agent) register(ctx context.Context, serverURL, tlsDir string, roots *x509.CertPool) (*joined, error) {
	password, err := nodeclient.NodePassword(a.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var present *tls.Certificate
	if cert, ok := a.validCert(tlsDir, roots); ok {
		present = &cert
	}
	anon, err := nodeclient.Dial(serverURL, roots, present)
	if err != nil {
		return nil, err
	}
	defer anon.Close()
	reg, err := nodeclient.Register(ctx, anon, a.cfg.Token, a.cfg.NodeName, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", serverURL, err)
	}
	if err := a.keepCert(tlsDir, reg); err != nil {
		return nil, err
	}
	conn, err := a.servers.dial(roots, &a.cert)
	if err != nil {
		return nil, err
	}
	a.lg.Info("node registered", "podCIDR", reg.Config.GetPodCidr())
	return &joined{conn: conn, config: reg.Config}, nil
}
