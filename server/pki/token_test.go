package pki_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/pki"
)

func TestTokenRoundTrip(t *testing.T) {
	a, dir := ensure(t, pki.Options{})
	stored := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "token"))))
	if stored != a.Token() {
		t.Errorf("token file = %q, Token() = %q", stored, a.Token())
	}
	hash, secret, err := api.ParseToken(a.Token())
	if err != nil {
		t.Fatalf("ParseToken(Token()) = %v", err)
	}
	if secret != a.TokenSecret() || len(secret) < 32 {
		t.Errorf("secret = %q, TokenSecret() = %q, want the same and at least 32 characters", secret, a.TokenSecret())
	}
	if hash != api.CAHash(a.CAPEM()) {
		t.Errorf("token hash = %q, want CAHash(CAPEM()) = %q", hash, api.CAHash(a.CAPEM()))
	}
	if err := api.VerifyCAHash(a.CAPEM(), hash); err != nil {
		t.Errorf("VerifyCAHash(own CA) = %v", err)
	}
	other, _ := ensure(t, pki.Options{})
	if err := api.VerifyCAHash(other.CAPEM(), hash); !errors.Is(err, api.ErrCAMismatch) {
		t.Errorf("VerifyCAHash(other CA) = %v, want ErrCAMismatch", err)
	}
	if err := api.VerifyCAHash(a.CAPEM(), ""); !errors.Is(err, api.ErrInvalidToken) {
		t.Errorf("VerifyCAHash(empty hash) = %v, want ErrInvalidToken", err)
	}
	if api.FormatToken(hash, secret) != a.Token() {
		t.Errorf("FormatToken(ParseToken(Token())) = %q, want %q", api.FormatToken(hash, secret), a.Token())
	}
}

func TestEnsureTokenFlag(t *testing.T) {
	dir := t.TempDir()
	first := ensureIn(t, dir, pki.Options{})
	caHash := api.CAHash(first.CAPEM())
	_, otherDir := ensure(t, pki.Options{})
	otherToken := strings.TrimSpace(string(readFile(t, filepath.Join(otherDir, "token"))))

	tests := []struct {
		name       string
		flag       string
		wantSecret string
		wantErr    error
	}{
		{name: "no flag keeps the stored secret", flag: "", wantSecret: first.TokenSecret()},
		{name: "plain secret", flag: "plain-secret", wantSecret: "plain-secret"},
		{name: "stored secret kept after flag", flag: "", wantSecret: "plain-secret"},
		{name: "full token for this CA", flag: api.FormatToken(caHash, "full-secret"), wantSecret: "full-secret"},
		{name: "full token for another CA", flag: otherToken, wantErr: api.ErrCAMismatch},
		{name: "malformed", flag: "K10nothex::server:x", wantErr: api.ErrInvalidToken},
		{name: "unchanged by refused flags", flag: "", wantSecret: "full-secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := pki.Ensure(dir, pki.Options{Token: tc.flag, Hostname: "testhost"})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Ensure(Token: %q) error = %v, want %v", tc.flag, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if a.TokenSecret() != tc.wantSecret || a.Token() != api.FormatToken(caHash, tc.wantSecret) {
				t.Errorf("Ensure(Token: %q) token = %q, want secret %q", tc.flag, a.Token(), tc.wantSecret)
			}
			data, err := os.ReadFile(filepath.Join(dir, "token"))
			if err != nil || strings.TrimSpace(string(data)) != a.Token() {
				t.Errorf("token file = %q, %v, want %q", data, err, a.Token())
			}
		})
	}
}
