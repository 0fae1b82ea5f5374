package pods

import "time"

// resetAfter is how long a container must run clean before its restart
// back-off starts again from nothing.
const resetAfter = 10 * time.Minute

// backoff spaces out retries of one thing per key (a container name). The
// first retry is immediate; each retry that follows a failure waits twice
// as long as the one before, from base up to max. A backoff belongs to one
// pod worker and is not safe for concurrent use.
type backoff struct {
	base, max time.Duration
	entries   map[string]*backoffEntry
}

type backoffEntry struct {
	// failure identifies the failure the delay was computed for (a
	// container attempt), so that syncs seeing the same failure again do
	// not double the delay.
	failure int
	delay   time.Duration
	until   time.Time
	message string // for pull errors: the registry's answer
}

func newBackoff(base, max time.Duration) *backoff {
	return &backoff{base: base, max: max, entries: map[string]*backoffEntry{}}
}

// next records failure number failure of key, seen at now, and returns when
// a retry may start and the delay that applies. Calling it again for the
// same failure returns the same answer.
func (b *backoff) next(key string, failure int, now time.Time) (until time.Time, delay time.Duration) {
	e := b.entries[key]
	switch {
	case e != nil && e.failure == failure:
		return e.until, e.delay
	case e == nil:
		e = &backoffEntry{}
		b.entries[key] = e
	case e.delay == 0:
		e.delay = b.base
	default:
		e.delay = min(2*e.delay, b.max)
	}
	e.failure, e.until = failure, now.Add(e.delay)
	return e.until, e.delay
}

// delayed returns key's entry while now is before its retry time.
func (b *backoff) delayed(key string, now time.Time) (*backoffEntry, bool) {
	e := b.entries[key]
	if e == nil || !now.Before(e.until) {
		return e, false
	}
	return e, true
}

// reset forgets key: its next failure is retried at once.
func (b *backoff) reset(key string) { delete(b.entries, key) }

// fail records a new failure of key, numbered after the last one.
func (b *backoff) fail(key string, now time.Time) (until time.Time, delay time.Duration) {
	n := 0
	if e := b.entries[key]; e != nil {
		n = e.failure + 1
	}
	return b.next(key, n, now)
}
