package auth

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"
)

// TokenAuthenticator authenticates bearer tokens that carry their own
// claims, such as service account tokens, beside the Authenticator's
// fixed table. It must be safe for concurrent use.
type TokenAuthenticator interface {
	// AuthenticateToken returns the user token stands for and the
	// audiences it is accepted for: those of audiences the token is meant
	// for, or, when audiences is empty, the API server's own. ok is false
	// if the token is not one of this authenticator's, or is invalid.
	AuthenticateToken(ctx context.Context, token string, audiences []string) (u User, accepted []string, ok bool)
}

// WithTokenAuthenticator returns a copy of a that also accepts the bearer
// tokens t accepts (tried after the fixed table), and that reviews fixed
// tokens (ReviewToken) as meant for apiAudiences, the API server's own
// audiences. The copy's table starts as a's; SetTokens on one leaves the
// other alone.
func (a *Authenticator) WithTokenAuthenticator(t TokenAuthenticator, apiAudiences []string) *Authenticator {
	b := a.clone()
	b.extra, b.apiAudiences = t, slices.Clone(apiAudiences)
	return b
}

// ReviewToken authenticates token as a bearer token meant for audiences
// (empty: the API server's own), for a TokenReview. It returns the user
// and the audiences the token is accepted for. A fixed-table token is
// meant for any of the API server's audiences and no other.
func (a *Authenticator) ReviewToken(ctx context.Context, token string, audiences []string) (User, []string, bool) {
	if token == "" {
		return User{}, nil, false
	}
	if u, ok := (*a.tokens.Load())[sha256.Sum256([]byte(token))]; ok {
		accepted := a.apiAudiences
		if len(audiences) > 0 {
			accepted = intersect(audiences, a.apiAudiences)
			if len(accepted) == 0 {
				return User{}, nil, false
			}
		}
		return withAuthenticated(u), slices.Clone(accepted), true
	}
	if a.extra == nil {
		return User{}, nil, false
	}
	u, accepted, ok := a.extra.AuthenticateToken(ctx, token, audiences)
	if !ok {
		return User{}, nil, false
	}
	return withAuthenticated(u), accepted, true
}

// bearerToken returns the token of a "Bearer TOKEN" header value, or "".
func bearerToken(header string) string {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// intersect returns the members of a that are in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
