package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// A join token is "K10<caHash>::server:<secret>": the hex SHA-256 of the
// CA bundle the server serves at /cacerts (CAHash), which a joining node
// checks before it trusts the server, and the secret that Register
// checks. A plain secret, without the prefix, is a token too; it pins no
// CA.
const (
	// tokenPrefix starts every full join token, followed by the CA hash.
	tokenPrefix = "K10"
	// tokenUser is the credential name in a full join token.
	tokenUser = "server"
)

var (
	// ErrInvalidToken: a token that is neither a plain secret nor a
	// well-formed "K10<hash>::server:<secret>" token.
	ErrInvalidToken = errors.New("api: invalid join token")
	// ErrCAMismatch: a CA bundle that does not hash to the value a token
	// pins.
	ErrCAMismatch = errors.New("api: the CA certificate does not match the join token")
)

// CAHash returns the hex SHA-256 of caPEM, the CA bundle exactly as the
// server serves it (so `sha256sum` of the server's ca.crt gives the same
// value).
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// VerifyCAHash returns nil if caPEM hashes to hash (as CAHash computes
// it), else an error wrapping ErrCAMismatch. An empty hash is
// ErrInvalidToken: a plain secret pins no CA, and the caller must decide
// what to trust.
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

// ParseToken splits a join token, surrounding white space ignored. A full
// token "K10<caHash>::server:<secret>" yields the lower-case hash and the
// secret; any other non-empty string without white space is a plain
// secret and yields an empty caHash. A token that starts with "K10" but is
// malformed, an empty token or one with white space inside is an error
// wrapping ErrInvalidToken.
func ParseToken(s string) (caHash, secret string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", fmt.Errorf("empty token: %w", ErrInvalidToken)
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return "", "", fmt.Errorf("token contains white space: %w", ErrInvalidToken)
	}
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return "", s, nil
	}
	hash, cred, ok := strings.Cut(rest, "::")
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
