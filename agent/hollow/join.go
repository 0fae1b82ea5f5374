package hollow

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
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
)

// Errors that retrying cannot fix; test with errors.Is.
var (
	// ErrInvalidToken: the token is malformed.
	ErrInvalidToken = errors.New("hollow: invalid join token")
	// ErrCAMismatch: the server's CA does not hash to the token's pin.
	ErrCAMismatch = errors.New("hollow: the server's CA certificate does not match the join token")
	// ErrTokenRefused: the server refused the join token.
	ErrTokenRefused = errors.New("hollow: the server refused the join token")
	// ErrRegistrationRefused: the server refused a node's registration
	// for another reason (e.g. an invalid node name).
	ErrRegistrationRefused = errors.New("hollow: registration refused")
)

// caPin returns the CA hash a "K10<hash>::server:<secret>" token pins; a
// plain secret pins none.
func caPin(token string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), "K10")
	if !ok {
		if token == "" {
			return "", fmt.Errorf("empty token: %w", ErrInvalidToken)
		}
		return "", nil
	}
	hash, cred, ok := strings.Cut(rest, "::")
	if b, err := hex.DecodeString(hash); !ok || err != nil || len(b) != sha256.Size || !strings.HasPrefix(cred, "server:") {
		return "", fmt.Errorf("token must look like K10<hash>::server:<secret>: %w", ErrInvalidToken)
	}
	return strings.ToLower(hash), nil
}

// trustCA fetches the server's CA bundle, checks it against the token's
// pin and keeps it in dataDir.
func trustCA(ctx context.Context, server, token, dataDir string) (*x509.CertPool, error) {
	pin, err := caPin(token)
	if err != nil {
		return nil, err
	}
	caPEM, err := fetchCA(ctx, server)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(caPEM)
	if pin != "" && subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(pin)) != 1 {
		return nil, fmt.Errorf("CA certificate served by %s has hash %x, the token pins %s: %w", server, sum, pin, ErrCAMismatch)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "ca.crt"), caPEM, 0o644); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("the CA bundle from %s holds no certificate", server)
	}
	return roots, nil
}

// fetchCA gets SERVER/cacerts without verifying the server: the caller
// checks the bundle against the token.
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
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the CA certificate: %w", err)
	}
	return data, nil
}

// register gets a certificate for node with the token and returns a
// connection that authenticates as the node, with the node's config.
func (h *hollow) register(ctx context.Context, node string) (*grpc.ClientConn, *api.NodeConfig, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, err
	}
	resp, err := api.NewNodeClient(h.anon).Register(ctx, &api.RegisterRequest{
		Token: h.cfg.Token, NodeName: node,
		Csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}),
	})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unauthenticated:
		return nil, nil, fmt.Errorf("%s: %w", h.cfg.Server, ErrTokenRefused)
	case codes.InvalidArgument:
		return nil, nil, fmt.Errorf("registering node %q: %s: %w", node, status.Convert(err).Message(), ErrRegistrationRefused)
	default:
		return nil, nil, fmt.Errorf("registering node %q: %w", node, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.X509KeyPair(resp.GetCertificate(), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, nil, fmt.Errorf("certificate from the server: %w", err)
	}
	conn, err := h.dial(&cert)
	if err != nil {
		return nil, nil, err
	}
	return conn, resp.GetConfig(), nil
}

// dial returns a connection to the server's gRPC endpoint (its HTTPS
// port) presenting cert, if any.
func (h *hollow) dial(cert *tls.Certificate) (*grpc.ClientConn, error) {
	u, err := url.Parse(h.cfg.Server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://HOST:PORT", h.cfg.Server)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	tc := &tls.Config{RootCAs: h.roots, ServerName: host, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return grpc.NewClient("passthrough:///"+net.JoinHostPort(host, port), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
}
