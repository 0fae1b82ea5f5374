package serviceaccount

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/minik-dev/minik/server/auth"
)

// Getter reads the objects a token names, for an Authenticator. It must
// be safe for concurrent use.
type Getter interface {
	// ObjectUID returns the uid of the object of resource
	// ("serviceaccounts", "pods", "secrets") named namespace/name, and
	// when its deletion was asked for (zero if it was not). A missing
	// object is an error, as is any failure to read it.
	ObjectUID(ctx context.Context, resource, namespace, name string) (uid string, deletedAt time.Time, err error)
}

// GetterFunc adapts a function to Getter.
type GetterFunc func(ctx context.Context, resource, namespace, name string) (string, time.Time, error)

// ObjectUID calls f.
func (f GetterFunc) ObjectUID(ctx context.Context, resource, namespace, name string) (string, time.Time, error) {
	return f(ctx, resource, namespace, name)
}

// Defaults of AuthenticatorOptions.
const (
	// DefaultCacheTTL is how long an accepted token is remembered: the
	// success TTL of Kubernetes' token cache.
	DefaultCacheTTL = 10 * time.Second
	// maxCached bounds the cache; past it, expired entries are dropped
	// and, if none were, the whole cache.
	maxCached = 4096
)

// AuthenticatorOptions configure an Authenticator. The zero value is valid.
type AuthenticatorOptions struct {
	// Audiences are the API server's audiences: a bearer token must be
	// meant for one of them. Empty means the issuer URL.
	Audiences []string
	// CacheTTL is how long an accepted token is accepted again without
	// reading the objects it names (DefaultCacheTTL if zero, no cache if
	// negative).
	CacheTTL time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Authenticator accepts service account tokens as bearer credentials. It
// implements auth.TokenAuthenticator and is safe for concurrent use.
type Authenticator struct {
	issuer    *Issuer
	objects   Getter
	audiences []string
	ttl       time.Duration
	now       func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedUser // guarded by mu
}

// cachedUser is an accepted token's user, good until until.
type cachedUser struct {
	user     auth.User
	accepted []string
	until    time.Time
}

var _ auth.TokenAuthenticator = (*Authenticator)(nil)

// NewAuthenticator returns an Authenticator of the tokens is signs, that
// reads the objects they name through objects.
func NewAuthenticator(is *Issuer, objects Getter, opts AuthenticatorOptions) *Authenticator {
	a := &Authenticator{
		issuer: is, objects: objects, audiences: slices.Clone(opts.Audiences),
		ttl: opts.CacheTTL, now: opts.Now, cache: map[[sha256.Size]byte]cachedUser{},
	}
	if len(a.audiences) == 0 {
		a.audiences = []string{is.URL()}
	}
	if a.ttl == 0 {
		a.ttl = DefaultCacheTTL
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// Audiences returns the API server's audiences. The slice is the caller's.
func (a *Authenticator) Audiences() []string { return slices.Clone(a.audiences) }

// AuthenticateToken implements auth.TokenAuthenticator: token must be
// one of the Issuer's, valid now, meant for one of audiences (empty: the
// API server's) and name a service account, and a bound pod or secret,
// that still exist with the uids it names and were not deleted more than
// Leeway ago. The user is shared: callers must not modify it.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string, audiences []string) (auth.User, []string, bool) {
	now := a.now()
	cacheable := len(audiences) == 0 && a.ttl > 0
	var key [sha256.Size]byte
	if cacheable {
		key = sha256.Sum256([]byte(token))
		if u, acc, ok := a.cached(key, now); ok {
			return u, acc, true
		}
	}
	if len(audiences) == 0 {
		audiences = a.audiences
	}
	c, err := a.issuer.Parse(token, now)
	if err != nil {
		return auth.User{}, nil, false
	}
	accepted := intersect(audiences, c.Audiences)
	if len(accepted) == 0 || !a.live(ctx, c, now) {
		return auth.User{}, nil, false
	}
	u := userOf(c)
	if cacheable {
		a.remember(key, cachedUser{user: u, accepted: accepted, until: minTime(now.Add(a.ttl), c.Expiry)}, now)
	}
	return u, slices.Clone(accepted), true
}

// live reports whether the objects c names still exist as c names them.
func (a *Authenticator) live(ctx context.Context, c Claims, now time.Time) bool {
	refs := []struct {
		resource string
		ref      *Ref
	}{{"serviceaccounts", &c.ServiceAccount}, {"pods", c.Pod}, {"secrets", c.Secret}}
	for _, r := range refs {
		if r.ref == nil {
			continue
		}
		uid, deletedAt, err := a.objects.ObjectUID(ctx, r.resource, c.Namespace, r.ref.Name)
		if err != nil || uid != r.ref.UID {
			return false
		}
		if !deletedAt.IsZero() && deletedAt.Before(now.Add(-Leeway)) {
			return false
		}
	}
	return true
}

// userOf is the user a token saying c authenticates as, with the extra
// facts Kubernetes records: the bound pod and its node, and the token id.
func userOf(c Claims) auth.User {
	u := auth.ServiceAccountUser(c.Namespace, c.ServiceAccount.Name, c.ServiceAccount.UID)
	extra := map[string][]string{}
	if c.Pod != nil {
		extra[auth.ExtraPodName] = []string{c.Pod.Name}
		extra[auth.ExtraPodUID] = []string{c.Pod.UID}
	}
	if c.Node != nil {
		extra[auth.ExtraNodeName] = []string{c.Node.Name}
		if c.Node.UID != "" {
			extra[auth.ExtraNodeUID] = []string{c.Node.UID}
		}
	}
	if c.ID != "" {
		extra[auth.ExtraCredentialID] = []string{"JTI=" + c.ID}
	}
	if len(extra) > 0 {
		u.Extra = extra
	}
	return u
}

func (a *Authenticator) cached(key [sha256.Size]byte, now time.Time) (auth.User, []string, bool) {
	a.mu.Lock()
	e, ok := a.cache[key]
	a.mu.Unlock()
	if !ok || !now.Before(e.until) {
		return auth.User{}, nil, false
	}
	u := e.user
	u.Groups = slices.Clone(u.Groups)
	return u, slices.Clone(e.accepted), true
}

func (a *Authenticator) remember(key [sha256.Size]byte, e cachedUser, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCached {
		for k, old := range a.cache {
			if !now.Before(old.until) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxCached {
			clear(a.cache)
		}
	}
	a.cache[key] = e
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

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
