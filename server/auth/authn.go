package auth

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// Authenticator maps a request's credentials to a User: a client
// certificate issued by the cluster CA (common name = user name,
// organizations = groups) or a bearer token from a table that SetTokens
// replaces. It is safe for concurrent use.
type Authenticator struct {
	clientCAs *x509.CertPool
	tokens    atomic.Pointer[map[[sha256.Size]byte]User]
	now       func() time.Time
	// extra and apiAudiences are set by WithTokenAuthenticator.
	extra        TokenAuthenticator
	apiAudiences []string
}

// NewAuthenticator returns an Authenticator that accepts bearer tokens
// from tokens (token → user) and client certificates. Certificates the
// TLS handshake verified (see pki.Authority.ServerTLSConfig) are trusted
// as they are; a certificate the handshake did not verify (a listener with
// tls.RequestClientCert) is verified against clientCAs, and refused if
// clientCAs is nil. Empty tokens are ignored. The map is copied.
//
// A server typically maps the join token secret, and the full join token,
// to BootstrapUser, and the admin token to AdminUser.
func NewAuthenticator(clientCAs *x509.CertPool, tokens map[string]User) *Authenticator {
	a := &Authenticator{clientCAs: clientCAs, now: time.Now}
	a.SetTokens(tokens)
	return a
}

// SetTokens replaces the bearer token table (token → user), as
// NewAuthenticator takes it: a rotated join token is accepted, and the
// old one refused, from the next request on.
func (a *Authenticator) SetTokens(tokens map[string]User) {
	table := make(map[[sha256.Size]byte]User, len(tokens))
	for tok, u := range tokens {
		if tok == "" {
			continue
		}
		u.Groups = slices.Clone(u.Groups)
		table[sha256.Sum256([]byte(tok))] = u
	}
	a.tokens.Store(&table)
}

// Authenticate returns the user r authenticates as and true, or false if
// r carries no acceptable credentials (none, an unknown bearer token, or a
// client certificate not from the cluster CA). A client certificate is
// tried before a bearer token. The returned user's groups include
// GroupAuthenticated and are the caller's to keep.
func (a *Authenticator) Authenticate(r *http.Request) (User, bool) {
	if u, ok := a.certUser(r.TLS); ok {
		return withAuthenticated(u), true
	}
	if u, ok := a.tokenUser(r.Header.Get("Authorization")); ok {
		return withAuthenticated(u), true
	}
	if a.extra != nil {
		if tok := bearerToken(r.Header.Get("Authorization")); tok != "" {
			if u, _, ok := a.extra.AuthenticateToken(r.Context(), tok, nil); ok {
				return withAuthenticated(u), true
			}
		}
	}
	return User{}, false
}

// certUser returns the identity in the connection's client certificate.
func (a *Authenticator) certUser(cs *tls.ConnectionState) (User, bool) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return User{}, false
	}
	var leaf *x509.Certificate
	switch {
	case len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0:
		leaf = cs.VerifiedChains[0][0]
	case a.clientCAs != nil:
		leaf = cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:         a.clientCAs,
			Intermediates: inter,
			CurrentTime:   a.now(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return User{}, false
		}
	default:
		return User{}, false
	}
	if leaf.Subject.CommonName == "" {
		return User{}, false
	}
	return User{Name: leaf.Subject.CommonName, Groups: slices.Clone(leaf.Subject.Organization)}, true
}

// tokenUser returns the identity of a "Bearer TOKEN" header value.
func (a *Authenticator) tokenUser(header string) (User, bool) {
	tok := bearerToken(header)
	if tok == "" {
		return User{}, false
	}
	u, ok := (*a.tokens.Load())[sha256.Sum256([]byte(tok))]
	return u, ok
}

// withAuthenticated returns u with a fresh group list that includes
// GroupAuthenticated.
func withAuthenticated(u User) User {
	groups := slices.Clone(u.Groups)
	if !slices.Contains(groups, GroupAuthenticated) {
		groups = append(groups, GroupAuthenticated)
	}
	u.Groups = groups
	return u
}
