package apiserver

import (
	"context"
	"sync"

	"github.com/minik-dev/minik/store"
)

// DefaultWatchBufferBytes is the default of Config.WatchBufferBytes.
const DefaultWatchBufferBytes = 16 << 20

// watchQueue holds the store events of one watch that its client has not
// taken yet, up to a limit in bytes. A client that falls further behind
// is cut off, as Kubernetes cuts off an unresponsive watcher: it then
// watches again from the last revision it saw. Taking the store's events
// as they come keeps the store from holding them for a client that may
// never read. Safe for concurrent use.
type watchQueue struct {
	limit int
	ready chan struct{} // signalled when events are queued or the queue ends

	mu         sync.Mutex
	evs        []store.Event // guarded by mu
	bytes      int           // guarded by mu; the weight of evs
	ended      bool          // guarded by mu; no more events will come
	overflowed bool          // guarded by mu; the client fell too far behind
}

func newWatchQueue(limit int) *watchQueue {
	return &watchQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// eventWeight is about what an event holds in memory.
func eventWeight(ev *store.Event) int {
	return len(ev.Key) + len(ev.Value) + len(ev.PrevValue) + 64
}

// fill moves events into q until the store's channel closes or ctx ends,
// or the client falls too far behind, when it calls cut (which ends the
// watch) first. It closes done when it returns.
func (q *watchQueue) fill(ctx context.Context, done chan<- struct{}, events <-chan store.Event, cut func()) {
	defer close(done)
	defer q.end()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !q.push(ev) {
				cut()
				return
			}
		}
	}
}

// push queues ev, and reports false, dropping what is queued, if that
// puts more than the limit in the queue. One event alone always fits.
func (q *watchQueue) push(ev store.Event) bool {
	w := eventWeight(&ev)
	q.mu.Lock()
	defer q.signal()
	defer q.mu.Unlock()
	if len(q.evs) > 0 && q.bytes+w > q.limit {
		q.overflowed, q.evs, q.bytes = true, nil, 0
		return false
	}
	q.evs = append(q.evs, ev)
	q.bytes += w
	return true
}

func (q *watchQueue) end() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
	q.signal()
}

func (q *watchQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take waits for queued events and returns them all, oldest first; ok is
// false once the queue has ended (all taken) or overflowed, or ctx ends.
func (q *watchQueue) take(ctx context.Context) (evs []store.Event, ok bool) {
	for {
		q.mu.Lock()
		evs, q.evs, q.bytes = q.evs, nil, 0
		done := q.overflowed || (q.ended && len(evs) == 0)
		q.mu.Unlock()
		switch {
		case done:
			return nil, false
		case len(evs) > 0:
			return evs, true
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, false
		}
	}
}
