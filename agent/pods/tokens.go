package pods

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Service account tokens: a serviceAccountToken projection holds a token
// of the pod's service account bound to the pod, which the node asks the
// server for (TokenSource) and asks for again before it expires, as the
// kubelet's token manager does: once 80% of its lifetime has passed, or
// 24 hours after it was issued, less a random jitter of up to 10 s so
// that the pods of a node do not all ask at once.

const (
	// tokenMaxTTL is the age after which a token is renewed whatever its
	// lifetime.
	tokenMaxTTL = 24 * time.Hour
	// tokenMaxJitter bounds the random advance of a renewal.
	tokenMaxJitter = 10 * time.Second
)

// TokenSource issues the service account tokens of the pods of this node.
// The agent's implementation asks the server. Implementations must be
// safe for concurrent use.
type TokenSource interface {
	// PodToken returns a token of pod's service account bound to pod, for
	// audience ("" = the API's), valid for expirationSeconds, and when it
	// expires.
	PodToken(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (token string, expiry time.Time, err error)
}

// tokenKey names one token of a pod.
type tokenKey struct {
	sa       string
	audience string
	seconds  int64
}

// podToken is a token the node holds and when to renew it.
type podToken struct {
	token     string
	expiry    time.Time
	refreshAt time.Time
}

// tokenCache holds the tokens of the node's pods, so that a volume
// rewritten for another reason keeps its token until renewal is due.
type tokenCache struct {
	src TokenSource
	now func() time.Time

	mu     sync.Mutex // guards tokens
	tokens map[types.UID]map[tokenKey]podToken
}

func newTokenCache(src TokenSource, now func() time.Time) *tokenCache {
	return &tokenCache{src: src, now: now, tokens: map[types.UID]map[tokenKey]podToken{}}
}

// get returns pod's token for the projection p, asking for a new one when
// none is held or renewal is due. When renewal fails, the held token is
// used while it is valid, as the kubelet does.
func (c *tokenCache) get(ctx context.Context, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection) (string, error) {
	seconds := int64(3600)
	if p.ExpirationSeconds != nil {
		seconds = *p.ExpirationSeconds
	}
	key := tokenKey{sa: pod.Spec.ServiceAccountName, audience: p.Audience, seconds: seconds}
	now := c.now()
	c.mu.Lock()
	held, ok := c.tokens[pod.UID][key]
	c.mu.Unlock()
	if ok && now.Before(held.refreshAt) {
		return held.token, nil
	}
	token, expiry, err := c.src.PodToken(ctx, pod, p.Audience, seconds)
	if err != nil {
		if ok && now.Before(held.expiry) {
			return held.token, nil
		}
		return "", err
	}
	c.mu.Lock()
	if c.tokens[pod.UID] == nil {
		c.tokens[pod.UID] = map[tokenKey]podToken{}
	}
	c.tokens[pod.UID][key] = podToken{token: token, expiry: expiry, refreshAt: refreshTime(expiry, seconds)}
	c.mu.Unlock()
	return token, nil
}

// refreshTime is when a token that expires at expiry, issued for seconds,
// is renewed.
func refreshTime(expiry time.Time, seconds int64) time.Time {
	ttl := time.Duration(seconds) * time.Second
	jitter := rand.N(tokenMaxJitter)
	at := expiry.Add(-ttl / 5)
	if capped := expiry.Add(-ttl).Add(tokenMaxTTL); capped.Before(at) {
		at = capped
	}
	return at.Add(-jitter)
}

// refreshAt is the earliest renewal of pod uid's tokens, zero when it
// holds none.
func (c *tokenCache) refreshAt(uid types.UID) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at time.Time
	for _, t := range c.tokens[uid] {
		if at.IsZero() || t.refreshAt.Before(at) {
			at = t.refreshAt
		}
	}
	return at
}

// forget drops the tokens of pod uid.
func (c *tokenCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tokens, uid)
}
