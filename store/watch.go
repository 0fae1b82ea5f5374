package store

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// catchUpBatch bounds the events fetched for one unsynced watcher at a time.
const catchUpBatch = 1024

// retryInterval is how often the sync loop retries watchers whose channel
// was full.
const retryInterval = 10 * time.Millisecond

// logReader reads the log from revision from on: up to limit events with
// the prefix, and the revision to continue from. Below the compacted
// revision it fails with ErrCompacted.
type logReader func(prefix string, from int64, limit int) (evs []Event, next int64, err error)

// watcher is one Watch call. All fields after ch are guarded by hub.mu.
type watcher struct {
	prefix string
	ch     chan Event
	// nextRev is the first revision not yet examined for this watcher:
	// every matching event before it has been sent or is in pending.
	nextRev int64
	pending []Event // fetched for an unsynced watcher, not yet sent
	err     error   // sent once pending is drained; then ch is closed
	synced  bool
	closed  bool
	stop    func() bool // stops the ctx.Done callback
}

// hub fans committed events out to watchers. Synced watchers get events
// from publish directly; a watcher whose channel is full becomes unsynced
// and the sync loop catches it up from the window or the log. All channel
// sends and closes happen under mu, and never block.
type hub struct {
	lg       *slog.Logger
	buffer   int
	readLog  logReader
	watchers prometheus.Gauge
	wake     chan struct{} // capacity 1: unsynced watchers need attention

	mu  sync.Mutex // guards everything below
	rev int64      // last published revision
	// window holds the events of revisions [windowStart, rev], the event
	// of revision r at index r % len(window).
	window      []Event
	windowStart int64
	synced      prefixIndex
	unsynced    map[*watcher]struct{}
	closed      bool
}

func newHub(lg *slog.Logger, opts Options, rev int64, g prometheus.Gauge, read logReader) *hub {
	return &hub{
		lg:          lg,
		buffer:      opts.WatchBuffer,
		readLog:     read,
		watchers:    g,
		wake:        make(chan struct{}, 1),
		rev:         rev,
		window:      make([]Event, opts.WindowSize),
		windowStart: rev + 1,
		synced:      newPrefixIndex(),
		unsynced:    make(map[*watcher]struct{}),
	}
}

// watch registers a watcher for events after rev (0: after the last
// published revision). ctx ending closes its channel.
func (h *hub) watch(ctx context.Context, prefix string, rev int64) (<-chan Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	w := &watcher{prefix: prefix, ch: make(chan Event, h.buffer), nextRev: rev + 1}
	if rev == 0 {
		w.nextRev = h.rev + 1
	}
	if w.nextRev > h.rev {
		h.addSyncedLocked(w)
	} else {
		h.unsynced[w] = struct{}{}
		h.signal()
	}
	h.watchers.Inc()
	w.stop = context.AfterFunc(ctx, func() { h.cancel(w) })
	return w.ch, nil
}

func (h *hub) cancel(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeLocked(w)
}

// closeLocked removes w and closes its channel. h.mu must be held.
func (h *hub) closeLocked(w *watcher) {
	if w.closed {
		return
	}
	w.closed = true
	if w.synced {
		h.synced.remove(w)
	} else {
		delete(h.unsynced, w)
	}
	w.pending = nil
	close(w.ch)
	w.stop()
	h.watchers.Dec()
}

func (h *hub) addSyncedLocked(w *watcher) {
	w.synced = true
	h.synced.add(w)
}

// unsyncLocked sets w aside; it has seen everything before w.nextRev.
func (h *hub) unsyncLocked(w *watcher) {
	h.synced.remove(w)
	w.synced = false
	h.unsynced[w] = struct{}{}
}

func (h *hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// publish records the events of one commit, in revision order, and sends
// them to the synced watchers whose prefix matches.
func (h *hub) publish(evs []Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	unsynced := len(h.unsynced)
	for i := range evs {
		ev := &evs[i]
		h.window[ev.Revision%int64(len(h.window))] = *ev
		h.rev = ev.Revision
		if h.rev-h.windowStart >= int64(len(h.window)) {
			h.windowStart = h.rev - int64(len(h.window)) + 1
		}
		for _, l := range h.synced.lens {
			if l > len(ev.Key) {
				break
			}
			for w := range h.synced.sets[ev.Key[:l]] {
				h.sendLocked(w, ev)
			}
		}
	}
	if len(h.unsynced) > unsynced {
		h.signal()
	}
}

// sendLocked delivers ev to the synced watcher w, or sets w aside when
// its channel is full. h.mu must be held.
func (h *hub) sendLocked(w *watcher, ev *Event) {
	if ev.Revision < w.nextRev {
		return // a watch that started ahead of ev
	}
	select {
	case w.ch <- *ev:
		w.nextRev = ev.Revision + 1
	default:
		w.nextRev = ev.Revision
		h.unsyncLocked(w)
		h.lg.Debug("watcher set aside", "prefix", w.prefix, "revision", ev.Revision)
	}
}

// run is the sync loop: it catches up unsynced watchers and sends
// progress events to synced ones, until ctx ends.
func (h *hub) run(ctx context.Context, progressEvery time.Duration) {
	var progress <-chan time.Time
	if progressEvery > 0 {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		progress = t.C
	}
	retry := time.NewTimer(retryInterval)
	defer retry.Stop()
	var retryC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-progress:
			h.sendProgress()
			continue
		case <-h.wake:
		case <-retryC:
		}
		retryC = nil
		if h.syncRound() {
			retry.Reset(retryInterval)
			retryC = retry.C
		}
	}
}

// syncRound makes one pass over the unsynced watchers and reports whether
// some remain.
func (h *hub) syncRound() bool {
	h.mu.Lock()
	ws := make([]*watcher, 0, len(h.unsynced))
	for w := range h.unsynced {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		h.syncOne(w)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.unsynced) > 0
}

// syncOne moves the unsynced watcher w forward as far as its channel
// allows, reading the log outside the lock when the window does not reach
// back to w.nextRev.
func (h *hub) syncOne(w *watcher) {
	h.mu.Lock()
	if !h.advanceLocked(w) {
		h.mu.Unlock()
		return
	}
	from := w.nextRev
	h.mu.Unlock()

	evs, next, err := h.readLog(w.prefix, from, catchUpBatch)

	h.mu.Lock()
	defer h.mu.Unlock()
	if w.closed || w.nextRev != from {
		return
	}
	if err != nil {
		h.lg.Debug("watcher cannot catch up", "prefix", w.prefix, "revision", from, "err", err)
		w.err = err
	} else {
		w.pending, w.nextRev = evs, next
	}
	h.advanceLocked(w)
}

// advanceLocked sends what w has pending, refills it from the window and
// moves w to the synced set once it has caught up. It reports whether w
// needs the log read from w.nextRev. h.mu must be held.
func (h *hub) advanceLocked(w *watcher) (needLog bool) {
	for !w.closed && w.flushLocked() {
		switch {
		case w.err != nil:
			select {
			case w.ch <- Event{Type: EventError, Revision: w.nextRev - 1, Err: w.err}:
				h.closeLocked(w)
			default:
			}
			return false
		case w.nextRev > h.rev:
			delete(h.unsynced, w)
			h.addSyncedLocked(w)
			return false
		case w.nextRev < h.windowStart:
			return true
		}
		h.fillFromWindowLocked(w)
	}
	return false
}

// flushLocked sends pending events while the channel has room and reports
// whether all were sent. h.mu must be held.
func (w *watcher) flushLocked() bool {
	for i, ev := range w.pending {
		select {
		case w.ch <- ev:
		default:
			w.pending = w.pending[i:]
			return false
		}
	}
	clear(w.pending)
	w.pending = w.pending[:0]
	return true
}

// fillFromWindowLocked queues the window's events from w.nextRev on that
// match w, up to catchUpBatch. h.mu must be held.
func (h *hub) fillFromWindowLocked(w *watcher) {
	n := int64(len(h.window))
	for ; w.nextRev <= h.rev && len(w.pending) < catchUpBatch; w.nextRev++ {
		if ev := &h.window[w.nextRev%n]; strings.HasPrefix(ev.Key, w.prefix) {
			w.pending = append(w.pending, *ev)
		}
	}
}

// sendProgress tells every synced watcher with room in its channel how
// far it is caught up.
func (h *hub) sendProgress() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.synced.sets {
		for w := range set {
			ev := Event{Type: EventProgress, Revision: max(h.rev, w.nextRev-1)}
			select {
			case w.ch <- ev:
			default:
			}
		}
	}
}

// close ends every watch: each channel gets an EventError with ErrClosed
// if it has room, and is closed.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	var all []*watcher
	for w := range h.unsynced {
		all = append(all, w)
	}
	for _, set := range h.synced.sets {
		for w := range set {
			all = append(all, w)
		}
	}
	for _, w := range all {
		select {
		case w.ch <- Event{Type: EventError, Revision: h.rev, Err: ErrClosed}:
		default:
		}
		h.closeLocked(w)
	}
}
