package agent

import (
	"errors"
	"testing"
)

func TestParseToken(t *testing.T) {
	hash := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, token, want string
		err               error
	}{
		{"pinned", "K10" + hash + "::server:secret", hash, nil},
		{"upper-case pin", "K10" + "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef" + "::server:s", hash, nil},
		{"plain secret", "plainsecret", "", nil},
		{"pin not hex", "K10nothex::server:x", "", ErrInvalidToken},
		{"not a server token", "K10" + hash + "::node:x", "", ErrInvalidToken},
		{"empty", "", "", ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseToken(tc.token)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("parseToken(%q) = %q, %v; want %q, %v", tc.token, got, err, tc.want, tc.err)
			}
		})
	}
}
