package pki_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minik-dev/minik/server/pki"
)

const hash64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseToken(t *testing.T) {
	tests := []struct {
		name       string
		token      string
		wantHash   string
		wantSecret string
		wantErr    error
	}{
		{name: "full", token: "K10" + hash64 + "::server:s3cret", wantHash: hash64, wantSecret: "s3cret"},
		{name: "full upper-case hash", token: "K10" + strings.ToUpper(hash64) + "::server:s3cret", wantHash: hash64, wantSecret: "s3cret"},
		{name: "secret with colons", token: "K10" + hash64 + "::server:a::b", wantHash: hash64, wantSecret: "a::b"},
		{name: "trailing newline", token: "K10" + hash64 + "::server:s3cret\n", wantHash: hash64, wantSecret: "s3cret"},
		{name: "plain", token: "mysecret", wantSecret: "mysecret"},
		{name: "empty", token: "", wantErr: pki.ErrInvalidToken},
		{name: "white space", token: "my secret", wantErr: pki.ErrInvalidToken},
		{name: "no separator", token: "K10" + hash64, wantErr: pki.ErrInvalidToken},
		{name: "short hash", token: "K10abcd::server:s", wantErr: pki.ErrInvalidToken},
		{name: "non-hex hash", token: "K10" + strings.Repeat("z", 64) + "::server:s", wantErr: pki.ErrInvalidToken},
		{name: "wrong user", token: "K10" + hash64 + "::node:s", wantErr: pki.ErrInvalidToken},
		{name: "empty secret", token: "K10" + hash64 + "::server:", wantErr: pki.ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hash, secret, err := pki.ParseToken(tc.token)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseToken(%q) error = %v, want %v", tc.token, err, tc.wantErr)
			}
			if hash != tc.wantHash || secret != tc.wantSecret {
				t.Errorf("ParseToken(%q) = %q, %q, want %q, %q", tc.token, hash, secret, tc.wantHash, tc.wantSecret)
			}
		})
	}
}

func TestTokenRoundTrip(t *testing.T) {
	a, dir := ensure(t, pki.Options{})
	stored := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "token"))))
	if stored != a.Token() {
		t.Errorf("token file = %q, Token() = %q", stored, a.Token())
	}
	hash, secret, err := pki.ParseToken(a.Token())
	if err != nil {
		t.Fatalf("ParseToken(Token()) = %v", err)
	}
	if secret != a.TokenSecret() || len(secret) < 32 {
		t.Errorf("secret = %q, TokenSecret() = %q, want the same and at least 32 characters", secret, a.TokenSecret())
	}
	if hash != pki.CAHash(a.CAPEM()) {
		t.Errorf("token hash = %q, want CAHash(CAPEM()) = %q", hash, pki.CAHash(a.CAPEM()))
	}
	if err := pki.VerifyCAHash(a.CAPEM(), hash); err != nil {
		t.Errorf("VerifyCAHash(own CA) = %v", err)
	}
	other, _ := ensure(t, pki.Options{})
	if err := pki.VerifyCAHash(other.CAPEM(), hash); !errors.Is(err, pki.ErrCAMismatch) {
		t.Errorf("VerifyCAHash(other CA) = %v, want ErrCAMismatch", err)
	}
	if err := pki.VerifyCAHash(a.CAPEM(), ""); !errors.Is(err, pki.ErrInvalidToken) {
		t.Errorf("VerifyCAHash(empty hash) = %v, want ErrInvalidToken", err)
	}
	if pki.FormatToken(hash, secret) != a.Token() {
		t.Errorf("FormatToken(ParseToken(Token())) = %q, want %q", pki.FormatToken(hash, secret), a.Token())
	}
}

func TestEnsureTokenFlag(t *testing.T) {
	dir := t.TempDir()
	first := ensureIn(t, dir, pki.Options{})
	caHash := pki.CAHash(first.CAPEM())
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
		{name: "full token for this CA", flag: pki.FormatToken(caHash, "full-secret"), wantSecret: "full-secret"},
		{name: "full token for another CA", flag: otherToken, wantErr: pki.ErrCAMismatch},
		{name: "malformed", flag: "K10nothex::server:x", wantErr: pki.ErrInvalidToken},
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
			if a.TokenSecret() != tc.wantSecret || a.Token() != pki.FormatToken(caHash, tc.wantSecret) {
				t.Errorf("Ensure(Token: %q) token = %q, want secret %q", tc.flag, a.Token(), tc.wantSecret)
			}
			data, err := os.ReadFile(filepath.Join(dir, "token"))
			if err != nil || strings.TrimSpace(string(data)) != a.Token() {
				t.Errorf("token file = %q, %v, want %q", data, err, a.Token())
			}
		})
	}
}
