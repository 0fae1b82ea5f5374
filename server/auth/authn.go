package auth

import (
	"crypto/sha256"
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
	// caSubjects are the raw subjects of clientCAs: a chain the TLS
	// handshake verified (against the CAs of the listener, which may
	// trust more) names a user only if it ends at one of them.
	caSubjects map[string]bool
	tokens     atomic.Pointer[map[[sha256.Size]byte]User]
	now        func() time.Time
	// extra and apiAudiences are set by WithTokenAuthenticator.
	extra        TokenAuthenticator
	apiAudiences []string
	// requestHeader is set by WithRequestHeader.
	requestHeader *RequestHeader
}

// NewAuthenticator returns an Authenticator that accepts bearer tokens
// from tokens (token → user) and client certificates. Certificates the
// TLS handshake verified (see pki.Authority.ServerTLSConfig) are trusted
// as they are when their chain ends at a CA of clientCAs, or clientCAs is
// nil (the listener may trust more CAs, such as the front proxy's: see
// WithRequestHeader); a certificate the handshake did not verify (a listener with
// tls.RequestClientCert) is verified against clientCAs, and refused if
// clientCAs is nil. Empty tokens are ignored. The map is copied.
//
// A server typically maps the join token secret, and the full join token,
// to BootstrapUser, and the admin token to AdminUser.
func NewAuthenticator(clientCAs *x509.CertPool, tokens map[string]User) *Authenticator {
	a := &Authenticator{clientCAs: clientCAs, caSubjects: map[string]bool{}, now: time.Now}
	if clientCAs != nil {
		//lint:ignore SA1019 the pool holds the CAs given here, not system roots
		for _, s := range clientCAs.Subjects() {
			a.caSubjects[string(s)] = true
		}
	}
	a.SetTokens(tokens)
	return a
}

// clone returns a copy of a sharing its token table.
func (a *Authenticator) clone() *Authenticator {
	b := &Authenticator{clientCAs: a.clientCAs, caSubjects: a.caSubjects, now: a.now,
		extra: a.extra, apiAudiences: a.apiAudiences, requestHeader: a.requestHeader}
	b.tokens.Store(a.tokens.Load())
	return b
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
// tried before a bearer token; one of the requestheader CA (see
// RequestHeader) authenticates the user its headers name. The returned user's groups include
// GroupAuthenticated and are the caller's to keep.
func (a *Authenticator) Authenticate(r *http.Request) (User, bool) {
	if u, ok := a.certUser(r); ok {
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

// certUser returns the identity in the connection's client certificate,
// or the one the request's headers name for a front proxy's.
func (a *Authenticator) certUser(r *http.Request) (User, bool) {
	cs := r.TLS
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return User{}, false
	}
	var leaf *x509.Certificate
	switch {
	case len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0:
		chain := cs.VerifiedChains[0]
		leaf = chain[0]
		if a.isFrontProxy(chain) {
			return a.headerUser(r, leaf)
		}
		if a.clientCAs != nil && !a.caSubjects[string(chain[len(chain)-1].RawSubject)] {
			return User{}, false
		}
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
