package hollow

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is a jittered, doubling wait.
type backoff struct{ next time.Duration }

func newBackoff() *backoff { return &backoff{next: minBackoff} }

// wait sleeps for the next interval, or until ctx ends.
func (b *backoff) wait(ctx context.Context) error {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, maxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// reset starts over from the shortest wait.
func (b *backoff) reset() { b.next = minBackoff }
