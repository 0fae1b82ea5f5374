package nodeclient

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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/atomicfile"
)

// Errors of joining that retrying cannot fix besides api.ErrInvalidToken
// and api.ErrCAMismatch; test with errors.Is.
var (
	// ErrTokenRefused: the server refused the join token.
	ErrTokenRefused = errors.New("nodeclient: the server refused the join token")
	// ErrRegistrationRefused: the server refused the registration for a
	// reason other than the token (e.g. an invalid node name).
	ErrRegistrationRefused = errors.New("nodeclient: registration refused")
)

// CAFile is the file, in the directory given to TrustCA, that keeps the
// CA certificates trusted.
const CAFile = "ca.crt"

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
	path := filepath.Join(dir, CAFile)
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
