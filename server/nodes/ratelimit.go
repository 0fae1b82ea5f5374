package nodes

import (
	"sync"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of the registration rate limit (Config). With them, names
// that never get a Node hold at most DefaultRegistrationBurst +
// DefaultRegistrationRate × 2 × DefaultRegistrationGrace = 152 ranges at
// any time, so registrations alone cannot use up the default /16.
const (
	DefaultRegistrationRate  = 0.5
	DefaultRegistrationBurst = 32
)

// registrationLimiter is a token bucket per join token: every
// registration that presents a valid token takes one.
type registrationLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	byToken map[string]*rate.Limiter // guarded by mu; by token secret
}

// newRegistrationLimiter returns a limiter of perSecond with burst; a
// negative perSecond allows everything.
func newRegistrationLimiter(perSecond float64, burst int) *registrationLimiter {
	l := &registrationLimiter{limit: rate.Limit(perSecond), burst: burst, byToken: map[string]*rate.Limiter{}}
	if perSecond < 0 {
		l.limit = rate.Inf
	}
	return l
}

// allow takes a registration from secret's bucket, or returns
// ResourceExhausted. Only secrets the caller has checked reach it, so the
// map holds one bucket per valid token.
func (l *registrationLimiter) allow(secret string) error {
	l.mu.Lock()
	lim, ok := l.byToken[secret]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byToken[secret] = lim
	}
	l.mu.Unlock()
	if lim.Allow() {
		return nil
	}
	return status.Errorf(codes.ResourceExhausted,
		"too many node registrations with this join token (%d at once, then %g a second); try again later", l.burst, float64(l.limit))
}
