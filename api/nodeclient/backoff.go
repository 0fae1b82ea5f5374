package nodeclient

import (
	"context"
	"math/rand/v2"
	"time"
)

// Reconnect backoff: jittered, doubling from MinBackoff to MaxBackoff, and
// back to MinBackoff after a connection that lasted StableAfter.
const (
	MinBackoff  = 200 * time.Millisecond
	MaxBackoff  = 10 * time.Second
	StableAfter = 30 * time.Second
)

// Backoff spaces out reconnections. It is not safe for concurrent use.
type Backoff struct{ next time.Duration }

// NewBackoff returns a backoff whose first wait is about MinBackoff.
func NewBackoff() *Backoff { return &Backoff{next: MinBackoff} }

// Next returns the next wait, between half and all of the current
// interval, and doubles the interval up to MaxBackoff.
func (b *Backoff) Next() time.Duration {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, MaxBackoff)
	return d
}

// Wait sleeps for Next, or until ctx ends, when it returns ctx.Err().
func (b *Backoff) Wait(ctx context.Context) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Connected tells the backoff that a connection began at start and has
// ended: one that lasted StableAfter starts the waits over.
func (b *Backoff) Connected(start time.Time) {
	if time.Since(start) > StableAfter {
		b.next = MinBackoff
	}
}
