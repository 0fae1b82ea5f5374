package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"unicode"

	"github.com/minik-dev/minik/internal/atomicfile"
)

const (
	// tokenPrefix starts every full join token, followed by the CA hash.
	tokenPrefix = "K10"
	// tokenUser is the credential name in a full join token.
	tokenUser = "server"
	// secretBytes is the entropy of generated secrets.
	secretBytes = 16
)

var (
	// ErrInvalidToken is returned for a token that is neither a plain secret
	// nor a well-formed "K10<hash>::server:<secret>" token.
	ErrInvalidToken = errors.New("pki: invalid token")
	// ErrCAMismatch is returned when a CA certificate does not hash to the
	// value a token pins.
	ErrCAMismatch = errors.New("pki: CA certificate does not match the token's hash")
)

// CAHash returns the hex SHA-256 of caPEM, the CA bundle exactly as the
// server serves it (the bytes of DATA/tls/ca.crt, so `sha256sum` of that
// file gives the same value).
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// VerifyCAHash returns nil if caPEM hashes to hash (as CAHash computes it),
// else an error wrapping ErrCAMismatch. An agent calls it on the CA bundle
// it fetched before trusting the bundle. An empty hash is ErrInvalidToken:
// a plain secret pins no CA, and the caller must decide what to trust.
func VerifyCAHash(caPEM []byte, hash string) error {
	if hash == "" {
		return fmt.Errorf("token pins no CA hash: %w", ErrInvalidToken)
	}
	got := CAHash(caPEM)
	if subtle.ConstantTimeCompare([]byte(got), []byte(strings.ToLower(hash))) != 1 {
		return fmt.Errorf("CA hash %s, token wants %s: %w", got, hash, ErrCAMismatch)
	}
	return nil
}

// FormatToken returns the full join token "K10<caHash>::server:<secret>".
func FormatToken(caHash, secret string) string {
	return tokenPrefix + caHash + "::" + tokenUser + ":" + secret
}

// ParseToken splits a join token. A full token "K10<caHash>::server:<secret>"
// yields the lower-case hash and the secret; any other non-empty string
// without white space is a plain secret and yields an empty caHash. A token
// that starts with "K10" but is malformed, an empty token or one with white
// space is an error wrapping ErrInvalidToken.
func ParseToken(s string) (caHash, secret string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", fmt.Errorf("empty token: %w", ErrInvalidToken)
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return "", "", fmt.Errorf("token contains white space: %w", ErrInvalidToken)
	}
	if !strings.HasPrefix(s, tokenPrefix) {
		return "", s, nil
	}
	hash, cred, ok := strings.Cut(s[len(tokenPrefix):], "::")
	if !ok {
		return "", "", fmt.Errorf("token starts with %q but has no \"::\": %w", tokenPrefix, ErrInvalidToken)
	}
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return "", "", fmt.Errorf("token CA hash %q is not %d hex digits: %w", hash, 2*sha256.Size, ErrInvalidToken)
	}
	user, secret, ok := strings.Cut(cred, ":")
	if !ok || user != tokenUser {
		return "", "", fmt.Errorf("token credential must be %q: %w", tokenUser+":<secret>", ErrInvalidToken)
	}
	if secret == "" {
		return "", "", fmt.Errorf("token has an empty secret: %w", ErrInvalidToken)
	}
	return strings.ToLower(hash), secret, nil
}

// randomSecret returns secretBytes of randomness in hex.
func randomSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// ensureToken returns the join token for the CA in caPEM and writes it to
// path. given (the --token flag) wins; else the secret stored in path is
// kept; else a new one is generated. A full given token must pin this CA.
func ensureToken(path string, caPEM []byte, given string, lg *slog.Logger) (token, secret string, err error) {
	hash := CAHash(caPEM)
	switch {
	case given != "":
		var pinned string
		if pinned, secret, err = ParseToken(given); err != nil {
			return "", "", err
		}
		if pinned != "" {
			if err := VerifyCAHash(caPEM, pinned); err != nil {
				return "", "", fmt.Errorf("--token: %w", err)
			}
		}
	default:
		data, rerr := os.ReadFile(path)
		switch {
		case errors.Is(rerr, fs.ErrNotExist):
			secret = randomSecret()
			lg.Info("generated join token", "path", path)
		case rerr != nil:
			return "", "", rerr
		default:
			var stored string
			if stored, secret, err = ParseToken(string(data)); err != nil {
				return "", "", fmt.Errorf("%s: %w", path, err)
			}
			if stored != "" && stored != hash {
				lg.Warn("join token pinned another CA; keeping its secret with the current CA hash", "path", path)
			}
		}
	}
	token = FormatToken(hash, secret)
	if err := writeIfChanged(path, []byte(token+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return token, secret, nil
}

// ensureSecretFile returns the secret stored in path, generating and
// writing one if the file does not exist.
func ensureSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if s == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			return "", fmt.Errorf("%s: %w", path, ErrInvalidToken)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	s := randomSecret() + randomSecret()
	return s, atomicfile.Write(path, []byte(s+"\n"), 0o600)
}

// writeIfChanged writes data to path unless the file already holds it.
func writeIfChanged(path string, data []byte, perm fs.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	return atomicfile.Write(path, data, perm)
}
