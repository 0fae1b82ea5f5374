package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/minik-dev/minik/internal/atomicfile"
)

// ServiceAccountKeyFile is the key that signs service account tokens,
// relative to TLSDir. Every server of a cluster holds the same one
// (Shared.ServiceAccountKey), so that any of them accepts the tokens the
// others issue.
const ServiceAccountKeyFile = "service-account.key"

// serviceAccountKeyBits is the size of a new service account key: RSA
// 2048 signs RS256, the algorithm every Kubernetes client and OIDC
// verifier accepts.
const serviceAccountKeyBits = 2048

// ensureServiceAccountKey loads the service account signing key from
// path, generating and writing one (0600) if the file does not exist. It
// returns the key and its PEM encoding.
func ensureServiceAccountKey(path string, lg *slog.Logger) (*rsa.PrivateKey, []byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := parseServiceAccountKey(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, data, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, serviceAccountKeyBits)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return nil, nil, err
	}
	lg.Info("generated service account signing key", "path", path)
	return key, data, nil
}

// parseServiceAccountKey parses a PEM RSA private key, PKCS #8 or PKCS #1.
func parseServiceAccountKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("service account key: no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("service account key: %T, want an RSA key", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("service account key: unexpected PEM block %q", block.Type)
}

// ServiceAccountKey returns the key that signs service account tokens.
// Callers must not modify it.
func (a *Authority) ServiceAccountKey() *rsa.PrivateKey { return a.saKey }
