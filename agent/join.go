package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/atomicfile"
)

// Errors of joining that retrying cannot fix; test with errors.Is.
var (
	// ErrCAMismatch: the server's CA does not hash to the token's pin.
	ErrCAMismatch = api.ErrCAMismatch
	// ErrTokenRefused: the server refused the join token.
	ErrTokenRefused = errors.New("agent: the server refused the join token")
	// ErrInvalidToken: the token is malformed.
	ErrInvalidToken = api.ErrInvalidToken
	// ErrRegistrationRefused: the server refused the registration for a
	// reason other than the token (e.g. an invalid node name).
	ErrRegistrationRefused = errors.New("agent: registration refused")
)

// Files under DataDir/tls.
const (
	caFile   = "ca.crt"
	certFile = "node.crt"
	keyFile  = "node.key"
)

// renewBefore is how close to expiry a kept certificate may be before
// the agent registers again.
const renewBefore = 30 * 24 * time.Hour

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
	roots, err := TrustCA(ctx, serverURL, a.cfg.Token, tlsDir, a.lg)
	if err != nil {
		return nil, err
	}
	if cert, ok := a.keptCert(tlsDir, roots); ok {
		conn, err := a.servers.dial(roots, &cert)
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

// TrustCA returns the server's CA certificates: fetched from serverURL
// and checked against the token's pin, or, for a plain-secret token, the
// ones kept in dir from an earlier join (else fetched and trusted on first
// use, with a warning to lg). What it trusts is kept in dir/ca.crt, dir
// being created if needed. A malformed token wraps ErrInvalidToken, a CA
// that does not match the pin ErrCAMismatch; other errors may be retried.
func TrustCA(ctx context.Context, serverURL, token, dir string, lg *slog.Logger) (*x509.CertPool, error) {
	pin, _, err := api.ParseToken(token)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, caFile)
	caPEM, err := os.ReadFile(path)
	if pin != "" || err != nil {
		if caPEM, err = fetchCA(ctx, serverURL); err != nil {
			return nil, err
		}
		if pin == "" {
			lg.Warn("the join token pins no CA; trusting the server's CA on first use")
		} else if err := api.VerifyCAHash(caPEM, pin); err != nil {
			return nil, fmt.Errorf("CA certificate served by %s: %w", serverURL, err)
		}
		if err := atomicfile.Write(path, caPEM, 0o644); err != nil {
			return nil, err
		}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no certificate", path)
	}
	return roots, nil
}

// fetchCA gets SERVER/cacerts without verifying the server: the caller
// checks what it gets against the token.
func fetchCA(ctx context.Context, server string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/cacerts", nil)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // checked by hash
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the CA certificate: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetching the CA certificate: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the CA certificate: %s", resp.Status)
	}
	return data, nil
}

// keptCert returns the node certificate kept in tlsDir if it is for this
// node, from this CA and not about to expire.
func (a *agent) keptCert(tlsDir string, roots *x509.CertPool) (tls.Certificate, bool) {
	cert, ok := a.validCert(tlsDir, roots)
	if !ok || time.Until(cert.Leaf.NotAfter) < renewBefore {
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
	password, err := NodePassword(a.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var present *tls.Certificate
	if cert, ok := a.validCert(tlsDir, roots); ok {
		present = &cert
	}
	anon, err := Dial(serverURL, roots, present)
	if err != nil {
		return nil, err
	}
	defer anon.Close()
	reg, err := Register(ctx, anon, a.cfg.Token, a.cfg.NodeName, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", serverURL, err)
	}
	if err := atomicfile.Write(filepath.Join(tlsDir, keyFile), reg.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(tlsDir, certFile), reg.CertPEM, 0o644); err != nil {
		return nil, err
	}
	conn, err := a.servers.dial(roots, &reg.Certificate)
	if err != nil {
		return nil, err
	}
	a.lg.Info("node registered", "podCIDR", reg.Config.GetPodCidr())
	return &joined{conn: conn, config: reg.Config}, nil
}

// Registration is what registering a node yields.
type Registration struct {
	// Certificate is the node's client certificate with its key.
	Certificate tls.Certificate
	// CertPEM and KeyPEM are the same, PEM-encoded.
	CertPEM, KeyPEM []byte
	Config          *api.NodeConfig
}

// Register asks the server over conn (a connection without a client
// certificate, or with one of node) for a certificate for node, with the
// join token and the node's password (see NodePassword). A refused token
// wraps ErrTokenRefused, a refused node name (invalid, or bound to
// another node) ErrRegistrationRefused; other errors (too many
// registrations at once) may be retried. It is safe for concurrent use.
func Register(ctx context.Context, conn *grpc.ClientConn, token, node, password string) (*Registration, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	resp, err := api.NewNodeClient(conn).Register(ctx, &api.RegisterRequest{
		Token: token, NodeName: node, NodePassword: password,
		Csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}),
	})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unauthenticated:
		return nil, ErrTokenRefused
	case codes.InvalidArgument, codes.PermissionDenied:
		return nil, fmt.Errorf("registering node %q: %s: %w", node, status.Convert(err).Message(), ErrRegistrationRefused)
	default:
		return nil, fmt.Errorf("registering node %q: %w", node, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	cert, err := tls.X509KeyPair(resp.GetCertificate(), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate from the server: %w", err)
	}
	return &Registration{Certificate: cert, CertPEM: resp.GetCertificate(), KeyPEM: keyPEM, Config: resp.GetConfig()}, nil
}

// PasswordFile is the file in an agent's data directory that keeps its
// node password.
const PasswordFile = "node-password"

// NodePassword returns the node password kept in dir/PasswordFile,
// generating one (128 random bits in hex, mode 0600) the first time. The
// server binds the node's name to it at the first registration.
func NodePassword(dir string) (string, error) {
	path := filepath.Join(dir, PasswordFile)
	data, err := os.ReadFile(path)
	if err == nil {
		p := strings.TrimSpace(string(data))
		if p == "" {
			return "", fmt.Errorf("%s is empty: delete it and the node's Node to register the node anew", path)
		}
		return p, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	p := hex.EncodeToString(b)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return p, atomicfile.Write(path, []byte(p+"\n"), 0o600)
}

// Dial returns a connection to the gRPC endpoint of the server at
// serverURL (its HTTPS port, "https://HOST:PORT") that verifies the server
// with roots and presents cert, if any.
func Dial(serverURL string, roots *x509.CertPool, cert *tls.Certificate) (*grpc.ClientConn, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://HOST:PORT", serverURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	tc := nodeTLSConfig(roots, cert)
	tc.ServerName = host
	return grpc.NewClient("passthrough:///"+net.JoinHostPort(host, port), nodeConnOptions(credentials.NewTLS(tc))...)
}

// nodeConnOptions are the dial options of every node connection: creds,
// fixed flow-control windows (see api.StreamWindow), then extra.
func nodeConnOptions(creds credentials.TransportCredentials, extra ...grpc.DialOption) []grpc.DialOption {
	return append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStaticStreamWindowSize(api.StreamWindow),
		grpc.WithStaticConnWindowSize(api.ConnWindow),
	}, extra...)
}

// nodeTLSConfig returns the TLS configuration of a connection to a
// server's gRPC endpoint: servers verified with roots, cert presented if
// not nil, and api.NodeProtocol offered so that a server that knows the
// protocol serves the connection with gRPC's own transport
// (credentials.NewTLS adds "h2" after it, which older servers select).
func nodeTLSConfig(roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{api.NodeProtocol}}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return tc
}
