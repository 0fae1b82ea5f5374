package store

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// catchUpBatch bounds the events fetched for one unsynced watcher at a
// time (and Options.WatchBufferBytes their weight).
const catchUpBatch = 1024

// catchUpPoll is how often an unsynced watcher whose channel is full by
// weight looks for room.
const catchUpPoll = 5 * time.Millisecond

// logReader reads the log from revision from on: up to limit events with
// the prefix, of about limitBytes in all (one at least), and the revision
// to continue from. Below the compacted revision it fails with
// ErrCompacted.
type logReader func(prefix string, from int64, limit, limitBytes int) (evs []Event, next int64, err error)

// weight is about the memory an event holds; none for an empty slot of
// the window.
func (ev *Event) weight() int {
	if ev.Type == 0 && ev.Key == "" {
		return 0
	}
	return len(ev.Key) + len(ev.Value) + len(ev.PrevValue) + 64
}

// watcher is one Watch call. Its channel has one owner at a time: while
// the watcher is synced, the hub, which sends under hub.mu without ever
// blocking; while it is unsynced, its catch-up goroutine, which blocks on
// the reader. Whoever owns the channel closes it.
type watcher struct {
	prefix string
	ch     chan Event
	ctx    context.Context
	stop   func() bool // stops the ctx.Done callback
	// sentBytes[i%len] is the weight of the first i events sent on ch,
	// so the weight of those still in it is a difference of two.
	// Guarded by hub.mu.
	sentBytes []int
	sent      int

	// Guarded by hub.mu.
	// nextRev is the first revision not yet examined for this watcher:
	// every matching event before it has been sent (or, while catching
	// up, fetched for sending).
	nextRev int64
	synced  bool
	closed  bool
}

// hub fans committed events out to watchers. Synced watchers get events
// from publish directly; a watcher whose channel is full is set aside and
// a goroutine of its own catches it up from the window or the log, at the
// reader's pace, then hands it back.
type hub struct {
	lg     *slog.Logger
	buffer int
	// bufferBytes bounds what waits in a watcher's channel, and
	// windowBytes what the window holds.
	bufferBytes, windowBytes int
	readLog                  logReader
	watchers                 prometheus.Gauge
	closing                  chan struct{} // closed by close: catch-up goroutines stop
	catchUps                 sync.WaitGroup

	mu  sync.Mutex // guards everything below
	rev int64      // last published revision
	// window holds the events of revisions [windowStart, rev], the event
	// of revision r at index r % len(window).
	window      []Event
	windowStart int64
	windowUsed  int         // the weight of the events in window
	windowAt    []time.Time // when each slot of window was published
	synced      prefixIndex
	closed      bool
}

func newHub(lg *slog.Logger, opts Options, rev int64, g prometheus.Gauge, read logReader) *hub {
	return &hub{
		lg:          lg,
		buffer:      opts.WatchBuffer,
		bufferBytes: opts.WatchBufferBytes,
		windowBytes: opts.WindowBytes,
		readLog:     read,
		watchers:    g,
		closing:     make(chan struct{}),
		rev:         rev,
		window:      make([]Event, opts.WindowSize),
		windowAt:    make([]time.Time, opts.WindowSize),
		windowStart: rev + 1,
		synced:      newPrefixIndex(),
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
	w := &watcher{prefix: prefix, ch: make(chan Event, h.buffer), ctx: ctx, nextRev: rev + 1,
		sentBytes: make([]int, h.buffer+1)}
	if rev == 0 {
		w.nextRev = h.rev + 1
	}
	h.watchers.Inc()
	w.stop = context.AfterFunc(ctx, func() { h.cancel(w) })
	if w.nextRev > h.rev {
		h.addSyncedLocked(w)
	} else {
		h.startCatchUpLocked(w)
	}
	return w.ch, nil
}

// cancel closes the channel of a synced watcher whose ctx ended; the
// catch-up goroutine of an unsynced one sees ctx itself.
func (h *hub) cancel(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.synced {
		h.endLocked(w, nil)
	}
}

// endLocked closes w's channel, after an EventError carrying err if err
// is set and the channel has room. Only the channel's owner may call it.
// h.mu must be held.
func (h *hub) endLocked(w *watcher, err error) {
	if w.closed {
		return
	}
	if err != nil {
		ev := Event{Type: EventError, Revision: w.nextRev - 1, Err: err}
		select {
		case w.ch <- ev:
			w.sentLocked(&ev)
		default:
		}
	}
	w.closed = true
	if w.synced {
		h.synced.remove(w)
	}
	close(w.ch)
	w.stop()
	h.watchers.Dec()
}

func (h *hub) addSyncedLocked(w *watcher) {
	w.synced = true
	h.synced.add(w)
}

// startCatchUpLocked sets w aside and starts its catch-up goroutine; w has
// seen everything before w.nextRev. h.mu must be held.
func (h *hub) startCatchUpLocked(w *watcher) {
	if w.synced {
		h.synced.remove(w)
		w.synced = false
	}
	h.catchUps.Add(1)
	go h.catchUp(w)
}

// publish records the events of one commit, in revision order, and sends
// them to the synced watchers whose prefix matches.
func (h *hub) publish(evs []Event) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var full []*watcher
	for i := range evs {
		ev := &evs[i]
		h.recordLocked(ev, now)
		for _, l := range h.synced.lens {
			if l > len(ev.Key) {
				break
			}
			for w := range h.synced.sets[ev.Key[:l]] {
				if !w.sendLocked(ev, h.bufferBytes) {
					full = append(full, w)
				}
			}
		}
		// Set aside only now: that changes the index being walked.
		for _, w := range full {
			h.startCatchUpLocked(w)
			h.lg.Debug("watcher set aside", "prefix", w.prefix, "revision", ev.Revision)
		}
		full = full[:0]
	}
}

// recordLocked puts ev in the window, making room by count and by
// weight. Every slot outside the window is empty, so the window's weight
// is that of all slots. h.mu must be held.
func (h *hub) recordLocked(ev *Event, now time.Time) {
	n := int64(len(h.window))
	slot := &h.window[ev.Revision%n]
	h.windowUsed += ev.weight() - slot.weight()
	*slot = *ev
	h.windowAt[ev.Revision%n] = now
	h.rev = ev.Revision
	if h.rev-h.windowStart >= n {
		h.windowStart = h.rev - n + 1
	}
	for h.windowUsed > h.windowBytes && h.windowStart < h.rev {
		h.dropOldestLocked()
	}
}

// dropOldestLocked takes the oldest event out of the window. h.mu must be
// held.
func (h *hub) dropOldestLocked() {
	old := &h.window[h.windowStart%int64(len(h.window))]
	h.windowUsed -= old.weight()
	*old = Event{}
	h.windowStart++
}

// expire takes the events published before cutoff out of the window, so
// that an idle store does not keep the last burst of changes in memory;
// watchers that need them read the log.
func (h *hub) expire(cutoff time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := int64(len(h.window))
	for h.windowStart <= h.rev && h.windowAt[h.windowStart%n].Before(cutoff) {
		h.dropOldestLocked()
	}
}

// queuedLocked is the weight of the events in w's channel: at most that
// of the last len(w.ch) sent. h.mu must be held.
func (w *watcher) queuedLocked() int {
	n := len(w.sentBytes)
	queued := min(len(w.ch), w.sent) // each event in ch was recorded
	return w.sentBytes[w.sent%n] - w.sentBytes[(w.sent-queued)%n]
}

// sentLocked records that ev went into w's channel. h.mu must be held.
func (w *watcher) sentLocked(ev *Event) {
	n := len(w.sentBytes)
	w.sentBytes[(w.sent+1)%n] = w.sentBytes[w.sent%n] + ev.weight()
	w.sent++
}

// sendLocked delivers ev to the synced watcher w and reports false if its
// channel is full, or holds more than limit bytes with ev. h.mu must be
// held.
func (w *watcher) sendLocked(ev *Event, limit int) bool {
	if ev.Revision < w.nextRev {
		return true // a watch that started ahead of ev
	}
	if len(w.ch) > 0 && w.queuedLocked()+ev.weight() > limit {
		w.nextRev = ev.Revision
		return false
	}
	select {
	case w.ch <- *ev:
		w.sentLocked(ev)
		w.nextRev = ev.Revision + 1
		return true
	default:
		w.nextRev = ev.Revision
		return false
	}
}

// run sends progress events to synced watchers, and expires the window's
// events older than windowAge, until ctx ends.
func (h *hub) run(ctx context.Context, progressEvery, windowAge time.Duration) {
	if progressEvery <= 0 {
		return
	}
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.sendProgress()
			h.expire(now.Add(-windowAge))
		}
	}
}

// catchUp feeds the unsynced watcher w from the window or the log until it
// has reached the last published revision, then hands it back to publish.
func (h *hub) catchUp(w *watcher) {
	defer h.catchUps.Done()
	var pending []Event
	for {
		h.mu.Lock()
		switch {
		case h.closed:
			h.endLocked(w, ErrClosed)
		case w.ctx.Err() != nil:
			h.endLocked(w, nil)
		case w.nextRev > h.rev:
			h.addSyncedLocked(w)
		}
		if w.closed || w.synced {
			h.mu.Unlock()
			return
		}
		from, fromLog := w.nextRev, w.nextRev < h.windowStart
		if !fromLog {
			pending = h.fillFromWindowLocked(w, pending[:0])
		}
		h.mu.Unlock()
		if fromLog {
			evs, next, err := h.readLog(w.prefix, from, catchUpBatch, h.bufferBytes)
			if err != nil {
				h.lg.Debug("watcher cannot catch up", "prefix", w.prefix, "revision", from, "err", err)
				h.fail(w, err)
				return
			}
			pending = evs
			h.mu.Lock()
			w.nextRev = next
			h.mu.Unlock()
		}
		for _, ev := range pending {
			if !h.send(w, ev) {
				break // the next round ends the watch
			}
		}
		clear(pending)
	}
}

// send delivers ev to an unsynced watcher, waiting for the reader to
// make room, by count and by weight. It reports false if the watch or the
// hub ends first.
func (h *hub) send(w *watcher, ev Event) bool {
	for !h.hasRoom(w, &ev) {
		// The reader gives no sign when it takes from the channel.
		select {
		case <-time.After(catchUpPoll):
		case <-w.ctx.Done():
			return false
		case <-h.closing:
			return false
		}
	}
	select {
	case w.ch <- ev:
		h.mu.Lock()
		w.sentLocked(&ev)
		h.mu.Unlock()
		return true
	case <-w.ctx.Done():
	case <-h.closing:
	}
	return false
}

// hasRoom reports whether ev fits in w's channel by weight.
func (h *hub) hasRoom(w *watcher, ev *Event) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(w.ch) == 0 || w.queuedLocked()+ev.weight() <= h.bufferBytes
}

// fail ends the unsynced watcher w with an EventError carrying err.
func (h *hub) fail(w *watcher, err error) {
	h.mu.Lock()
	ev := Event{Type: EventError, Revision: w.nextRev - 1, Err: err}
	h.mu.Unlock()
	h.send(w, ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endLocked(w, nil)
}

// fillFromWindowLocked appends to evs the window's events from w.nextRev
// on that match w, up to catchUpBatch. h.mu must be held.
func (h *hub) fillFromWindowLocked(w *watcher, evs []Event) []Event {
	n := int64(len(h.window))
	size := 0
	for ; w.nextRev <= h.rev && len(evs) < catchUpBatch && (len(evs) == 0 || size < h.bufferBytes); w.nextRev++ {
		if ev := &h.window[w.nextRev%n]; strings.HasPrefix(ev.Key, w.prefix) {
			evs = append(evs, *ev)
			size += ev.weight()
		}
	}
	return evs
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
				w.sentLocked(&ev)
			default:
			}
		}
	}
}

// close ends every watch: each channel gets an EventError with ErrClosed
// if it has room, and is closed. It returns once all are closed.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	close(h.closing)
	for _, set := range h.synced.sets {
		for w := range set {
			h.endLocked(w, ErrClosed)
		}
	}
	h.mu.Unlock()
	h.catchUps.Wait()
}
