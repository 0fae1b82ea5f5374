package api_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/minik-dev/minik/api"
)

const hash64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// The cases of the server's token parser and of the joining node's, which
// were two: both now read tokens by the stricter rules.
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
		{name: "mixed-case hash", token: "K10" + "0123456789ABCDEF" + hash64[16:] + "::server:s", wantHash: hash64, wantSecret: "s"},
		{name: "secret with colons", token: "K10" + hash64 + "::server:a::b", wantHash: hash64, wantSecret: "a::b"},
		{name: "trailing newline", token: "K10" + hash64 + "::server:s3cret\n", wantHash: hash64, wantSecret: "s3cret"},
		{name: "surrounding spaces", token: "  plainsecret\t", wantSecret: "plainsecret"},
		{name: "plain", token: "mysecret", wantSecret: "mysecret"},
		{name: "empty", token: "", wantErr: api.ErrInvalidToken},
		{name: "blank", token: " \n", wantErr: api.ErrInvalidToken},
		{name: "white space", token: "my secret", wantErr: api.ErrInvalidToken},
		{name: "no separator", token: "K10" + hash64, wantErr: api.ErrInvalidToken},
		{name: "short hash", token: "K10abcd::server:s", wantErr: api.ErrInvalidToken},
		{name: "pin not hex", token: "K10nothex::server:x", wantErr: api.ErrInvalidToken},
		{name: "non-hex hash", token: "K10" + strings.Repeat("z", 64) + "::server:s", wantErr: api.ErrInvalidToken},
		{name: "wrong user", token: "K10" + hash64 + "::node:s", wantErr: api.ErrInvalidToken},
		// Accepted by the joining node's parser before, which asked
		// only for a "server:" prefix.
		{name: "empty secret", token: "K10" + hash64 + "::server:", wantErr: api.ErrInvalidToken},
		{name: "white space in the secret", token: "K10" + hash64 + "::server:a b", wantErr: api.ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hash, secret, err := api.ParseToken(tc.token)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseToken(%q) error = %v, want %v", tc.token, err, tc.wantErr)
			}
			if hash != tc.wantHash || secret != tc.wantSecret {
				t.Errorf("ParseToken(%q) = %q, %q, want %q, %q", tc.token, hash, secret, tc.wantHash, tc.wantSecret)
			}
		})
	}
}

func TestFormatTokenAndCAHash(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
	tok := api.FormatToken(api.CAHash(ca), "s3cret")
	hash, secret, err := api.ParseToken(tok)
	if err != nil || secret != "s3cret" {
		t.Fatalf("ParseToken(FormatToken()) = %q, %q, %v", hash, secret, err)
	}
	if err := api.VerifyCAHash(ca, hash); err != nil {
		t.Errorf("VerifyCAHash(own CA) = %v", err)
	}
	if err := api.VerifyCAHash(append(ca, '\n'), hash); !errors.Is(err, api.ErrCAMismatch) {
		t.Errorf("VerifyCAHash(other CA) = %v, want %v", err, api.ErrCAMismatch)
	}
	if err := api.VerifyCAHash(ca, ""); !errors.Is(err, api.ErrInvalidToken) {
		t.Errorf("VerifyCAHash(no hash) = %v, want %v", err, api.ErrInvalidToken)
	}
}
