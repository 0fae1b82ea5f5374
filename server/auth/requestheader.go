package auth

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The headers a front proxy names the user in, as kube-apiserver's
// aggregator sets them and aggregated servers read them.
const (
	RemoteUserHeader        = "X-Remote-User"
	RemoteGroupHeader       = "X-Remote-Group"
	RemoteExtraHeaderPrefix = "X-Remote-Extra-"
)

// RequestHeader configures requestheader authentication, as kube-apiserver
// does it for its front proxy: a request over a connection whose client
// certificate was issued by CA, with a common name in AllowedNames (any,
// if empty), is the user named in its first non-empty UsernameHeaders
// header, with the groups of every GroupHeaders header and the extra
// values of the headers starting with one of ExtraHeaderPrefixes (the
// rest of the header name, unescaped and lowercased, is the key).
// Certificates of CA assert nothing else: without a user header, or from
// a name not allowed, they authenticate no one.
type RequestHeader struct {
	CA                  *x509.Certificate
	AllowedNames        []string
	UsernameHeaders     []string
	GroupHeaders        []string
	ExtraHeaderPrefixes []string
}

// WithRequestHeader returns a copy of a that also accepts requestheader
// authentication as rh configures it. The copy's token table starts as
// a's; SetTokens on one leaves the other alone.
func (a *Authenticator) WithRequestHeader(rh RequestHeader) *Authenticator {
	b := a.clone()
	b.requestHeader = &rh
	return b
}

// isFrontProxy reports whether chain, verified by the TLS handshake, ends
// at the requestheader CA.
func (a *Authenticator) isFrontProxy(chain []*x509.Certificate) bool {
	rh := a.requestHeader
	return rh != nil && rh.CA != nil && len(chain) > 0 && chain[len(chain)-1].Equal(rh.CA)
}

// headerUser returns the user r's headers name, when leaf (a certificate
// of the requestheader CA) may assert it.
func (a *Authenticator) headerUser(r *http.Request, leaf *x509.Certificate) (User, bool) {
	rh := a.requestHeader
	if len(rh.AllowedNames) > 0 && !slices.Contains(rh.AllowedNames, leaf.Subject.CommonName) {
		return User{}, false
	}
	var u User
	for _, h := range rh.UsernameHeaders {
		if u.Name = r.Header.Get(h); u.Name != "" {
			break
		}
	}
	if u.Name == "" {
		return User{}, false
	}
	for _, h := range rh.GroupHeaders {
		u.Groups = append(u.Groups, r.Header.Values(h)...)
	}
	for name, values := range r.Header {
		for _, prefix := range rh.ExtraHeaderPrefixes {
			if len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
				continue
			}
			key, err := url.PathUnescape(name[len(prefix):])
			if err != nil {
				key = name[len(prefix):]
			}
			key = strings.ToLower(key)
			if u.Extra == nil {
				u.Extra = map[string][]string{}
			}
			u.Extra[key] = append(u.Extra[key], values...)
		}
	}
	return u, true
}
