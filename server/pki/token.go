package pki

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/atomicfile"
)

// secretBytes is the entropy of generated secrets.
const secretBytes = 16

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
	hash := api.CAHash(caPEM)
	switch {
	case given != "":
		var pinned string
		if pinned, secret, err = api.ParseToken(given); err != nil {
			return "", "", err
		}
		if pinned != "" {
			if err := api.VerifyCAHash(caPEM, pinned); err != nil {
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
			if stored, secret, err = api.ParseToken(string(data)); err != nil {
				return "", "", fmt.Errorf("%s: %w", path, err)
			}
			if stored != "" && stored != hash {
				lg.Warn("join token pinned another CA; keeping its secret with the current CA hash", "path", path)
			}
		}
	}
	token = api.FormatToken(hash, secret)
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
			return "", fmt.Errorf("%s: %w", path, api.ErrInvalidToken)
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

// RotateToken writes a new join token, with a new secret, to
// dataDir/token and returns it. A running server accepts it, and no longer
// the old one, within pollInterval (Authority.Run); nodes already joined
// go on with their certificates, which they renew without the token.
func RotateToken(dataDir string) (string, error) {
	return WriteTokenSecret(dataDir, randomSecret())
}

// WriteTokenSecret writes the join token with secret, pinning the CA kept
// under dataDir, to dataDir/token and returns it. A running server takes
// it at its next Refresh.
func WriteTokenSecret(dataDir, secret string) (string, error) {
	if secret == "" || strings.IndexFunc(secret, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("token secret: %w", api.ErrInvalidToken)
	}
	caPEM, err := os.ReadFile(filepath.Join(dataDir, TLSDir, "ca.crt"))
	if err != nil {
		return "", fmt.Errorf("cluster CA: %w", err)
	}
	token := api.FormatToken(api.CAHash(caPEM), secret)
	if err := writeIfChanged(filepath.Join(dataDir, TokenFile), []byte(token+"\n"), 0o600); err != nil {
		return "", err
	}
	return token, nil
}
