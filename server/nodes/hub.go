package nodes

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Sizes of the hub's buffers.
const (
	// maxQueued is how many deltas a session may have waiting, and
	// maxQueuedBytes how many bytes of objects, before the hub drops it;
	// the session then starts over with a complete set.
	maxQueued      = 4096
	maxQueuedBytes = 16 << 20
	// replayLen is how many recent deltas the hub keeps for sessions
	// resuming from a revision, and replayBytes how many bytes of
	// objects at most: a count alone let large objects hold gigabytes.
	replayLen   = 4096
	replayBytes = 64 << 20
	// progressEvery is how often the store's progress notifications are
	// passed on to the sessions by default. Sessions only use them to tell a quiet
	// node the revision moved on (every idleRevisionEvery), and passing
	// each one on would wake every session every second.
	progressEvery = idleRevisionEvery / 3
)

// errNotReplayable: the hub no longer holds every change after the
// revision a session asked to resume from.
var errNotReplayable = errors.New("nodes: revision not held for replay")

// delta is one store event as the hub hands it to sessions. Deltas are
// shared by every session they go to and must not be changed.
type delta struct {
	ev store.Event
	// change is the change of a service, endpoints, Node, ConfigMap or
	// Secret, built once for every session; nil when there is nothing to
	// send. Sessions pass on a ConfigMap or Secret only if their node's
	// pods reference it. Pod changes depend on the node and are built by
	// the session.
	change *api.Change
	// nodes are the pod's nodeName before and after the change ("" when
	// unbound or not a pod).
	oldNode, newNode string
	// weight is about the memory the delta holds.
	weight int
}

// weigh sets d.weight from its event and change.
func (d *delta) weigh() *delta {
	d.weight = len(d.ev.Key) + len(d.ev.Value) + len(d.ev.PrevValue) + 128
	if d.change != nil {
		d.weight += proto.Size(d.change)
	}
	return d
}

// subscriber is a session's queue of deltas. The hub appends without
// blocking; a session that lets the queue fill up is dropped.
type subscriber struct {
	node  string
	after int64         // deltas at or below this revision are not queued; hub-owned
	ready chan struct{} // signalled when the queue becomes non-empty

	mu      sync.Mutex // guards queue, queued and dropped
	queue   []*delta
	queued  int // the weight of queue
	dropped bool
}

func newSubscriber(node string) *subscriber {
	return &subscriber{node: node, ready: make(chan struct{}, 1)}
}

// push queues d and reports whether the subscriber still follows the hub.
func (s *subscriber) push(d *delta) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return false
	}
	if len(s.queue) >= maxQueued || (len(s.queue) > 0 && s.queued+d.weight > maxQueuedBytes) {
		s.dropped, s.queue, s.queued = true, nil, 0
	} else {
		s.queue = append(s.queue, d)
		s.queued += d.weight
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return !s.dropped
}

// drop detaches the subscriber from the hub.
func (s *subscriber) drop() {
	s.mu.Lock()
	s.dropped, s.queue, s.queued = true, nil, 0
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// take returns the queued deltas, in revision order, and whether the
// subscriber was dropped.
func (s *subscriber) take() ([]*delta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue, s.queued = nil, 0
	return q, s.dropped
}

// concerns reports whether d goes to the subscriber.
func (s *subscriber) concerns(d *delta) bool {
	if d.ev.Type == store.EventProgress || d.change != nil {
		return true
	}
	return s.node == d.newNode || s.node == d.oldNode
}

// subscription asks the hub to follow a session. after > 0 resumes after
// that revision; 0 subscribes at the hub's revision, which is replied.
type subscription struct {
	sub   *subscriber
	after int64
	reply chan subscribed
}

type subscribed struct {
	rev int64
	err error
}

// hub is the one store watch behind every session. Its goroutine owns
// the subscribers and the replay buffer. Each pod event goes to at most
// the two sessions of the nodes it was and is bound to; services,
// endpoints, Nodes, ConfigMaps and Secrets go to every session (which
// filters the last two).
type hub struct {
	st     store.Store
	lg     *slog.Logger
	subs   chan subscription
	unsubs chan *subscriber
	done   <-chan struct{} // closed once run has returned
	// onNodeDeleted, if set, is called with the key of each deleted Node.
	onNodeDeleted func(key string)

	now func() time.Time // time.Now, but for tests
	// progressEvery is how often progress is passed on to sessions.
	progressEvery time.Duration

	// Owned by run.
	rev        int64 // every delta up to rev has been dispatched
	byNode     map[string]map[*subscriber]struct{}
	all        map[*subscriber]struct{}
	replay     []*delta  // the last deltas (see replayLen), oldest first
	replayed   int       // the weight of replay
	covered    int64     // replay holds every delta after covered
	progressed time.Time // when progress was last passed on to sessions
	// nodeOf is the nodeName of each pod's value as of the last change
	// the watch delivered ("" when unbound), so that an update need not
	// decode the value before it.
	nodeOf map[string]string
}

func newHub(st store.Store, lg *slog.Logger, done <-chan struct{}) *hub {
	return &hub{
		st: st, lg: lg, done: done, now: time.Now, progressEvery: progressEvery,
		subs:   make(chan subscription),
		unsubs: make(chan *subscriber, 64),
		byNode: map[string]map[*subscriber]struct{}{},
		all:    map[*subscriber]struct{}{},
		nodeOf: map[string]string{},
	}
}

// subscribe registers sub (see subscription) and returns the revision the
// session's deltas follow.
func (h *hub) subscribe(ctx context.Context, sub *subscriber, after int64) (int64, error) {
	req := subscription{sub: sub, after: after, reply: make(chan subscribed, 1)}
	select {
	case h.subs <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-h.done:
		return 0, store.ErrClosed
	}
	select {
	case r := <-req.reply:
		return r.rev, r.err
	case <-ctx.Done():
		h.unsubscribe(sub)
		return 0, ctx.Err()
	case <-h.done:
		return 0, store.ErrClosed
	}
}

// unsubscribe detaches sub; it never blocks for long.
func (h *hub) unsubscribe(sub *subscriber) {
	sub.drop()
	select {
	case h.unsubs <- sub:
	case <-h.done:
	}
}

// run follows the store until ctx ends. When its watch fails it drops
// every session (each starts over with a complete set) and watches again
// from the current revision.
func (h *hub) run(ctx context.Context) {
	for ctx.Err() == nil {
		events, err := h.watch(ctx)
		if err == nil {
			err = h.follow(ctx, events)
		}
		h.dropAll()
		if ctx.Err() != nil {
			return
		}
		h.lg.Warn("session watch ended; watching again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (h *hub) watch(ctx context.Context) (<-chan store.Event, error) {
	rev, err := h.st.CurrentRevision(ctx)
	if err != nil {
		return nil, err
	}
	events, err := h.st.Watch(ctx, registryPrefix, rev)
	if err != nil {
		return nil, err
	}
	h.rev, h.covered = rev, rev
	h.replay, h.replayed = nil, 0
	h.nodeOf = map[string]string{}
	return events, nil
}

// follow dispatches events until the watch ends.
func (h *hub) follow(ctx context.Context, events <-chan store.Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-h.subs:
			h.add(req)
		case sub := <-h.unsubs:
			h.remove(sub)
		case ev, ok := <-events:
			if !ok {
				return errors.New("watch closed")
			}
			if ev.Type == store.EventError {
				return ev.Err
			}
			h.dispatch(h.delta(ev))
		}
	}
}

// delta decodes what sessions need of ev, once for all of them.
func (h *hub) delta(ev store.Event) *delta {
	d := &delta{ev: ev}
	defer d.weigh()
	if ev.Type == store.EventProgress {
		return d
	}
	kind, ns, name, ok := parseKey(ev.Key)
	switch {
	case !ok:
	case kind == api.ObjectKind_OBJECT_KIND_POD:
		d.oldNode, d.newNode = h.podNodes(ev)
	default:
		if kind == api.ObjectKind_OBJECT_KIND_NODE && ev.Type == store.EventDelete && h.onNodeDeleted != nil {
			h.onNodeDeleted(ev.Key)
		}
		c, err := sharedChange(ev, kind, ns, name)
		if err != nil {
			h.lg.Warn("skipping undecodable object", "key", ev.Key, "err", err)
		}
		d.change = c
	}
	return d
}

// podNodes returns the nodeName of a pod before and after ev, and keeps
// the one after for the pod's next change.
func (h *hub) podNodes(ev store.Event) (oldNode, newNode string) {
	known, seen := h.nodeOf[ev.Key]
	switch ev.Type {
	case store.EventDelete:
		delete(h.nodeOf, ev.Key)
		if seen {
			return known, known
		}
		n := podNodeName(ev.Value)
		return n, n
	case store.EventUpdate:
		oldNode = known
		if !seen {
			oldNode = podNodeName(ev.PrevValue)
		}
		newNode = podNodeName(ev.Value)
	default:
		newNode = podNodeName(ev.Value)
		oldNode = newNode
	}
	h.nodeOf[ev.Key] = newNode
	return oldNode, newNode
}

// dispatch queues d for the sessions it concerns and keeps it for replay.
// Progress goes to every session, but at most once every h.progressEvery.
func (h *hub) dispatch(d *delta) {
	h.rev = max(h.rev, d.ev.Revision)
	switch {
	case d.ev.Type == store.EventProgress:
		if now := h.now(); now.Sub(h.progressed) >= h.progressEvery {
			h.progressed = now
			for sub := range h.all {
				h.push(sub, d)
			}
		}
	case d.change != nil:
		for sub := range h.all {
			h.push(sub, d)
		}
	case d.newNode != "" || d.oldNode != "":
		for sub := range h.byNode[d.newNode] {
			h.push(sub, d)
		}
		if d.oldNode != d.newNode {
			for sub := range h.byNode[d.oldNode] {
				h.push(sub, d)
			}
		}
	}
	if d.ev.Type != store.EventProgress {
		h.keep(d)
	}
}

func (h *hub) push(sub *subscriber, d *delta) {
	if d.ev.Revision <= sub.after {
		return
	}
	if !sub.push(d) {
		h.lg.Info("session fell behind; it starts over with a complete set", "node", sub.node)
		h.remove(sub)
	}
}

// keep adds d to the replay buffer, dropping the oldest deltas past
// replayLen or replayBytes.
func (h *hub) keep(d *delta) {
	h.replay = append(h.replay, d)
	h.replayed += d.weight
	for len(h.replay) > 1 && (len(h.replay) > replayLen || h.replayed > replayBytes) {
		old := h.replay[0]
		h.covered = old.ev.Revision
		h.replayed -= old.weight
		h.replay[0] = nil
		h.replay = h.replay[1:]
	}
}

// add registers a subscriber, first queueing the deltas it missed after
// the revision it resumes from.
func (h *hub) add(req subscription) {
	sub := req.sub
	if req.after == 0 {
		sub.after = h.rev
	} else {
		if req.after < h.covered {
			req.reply <- subscribed{err: errNotReplayable}
			return
		}
		sub.after = req.after
		for _, d := range h.replay {
			if d.ev.Revision > req.after && sub.concerns(d) && !sub.push(d) {
				req.reply <- subscribed{err: errNotReplayable}
				return
			}
		}
	}
	h.all[sub] = struct{}{}
	m := h.byNode[sub.node]
	if m == nil {
		m = map[*subscriber]struct{}{}
		h.byNode[sub.node] = m
	}
	m[sub] = struct{}{}
	req.reply <- subscribed{rev: sub.after}
}

func (h *hub) remove(sub *subscriber) {
	delete(h.all, sub)
	if m := h.byNode[sub.node]; m != nil {
		delete(m, sub)
		if len(m) == 0 {
			delete(h.byNode, sub.node)
		}
	}
}

func (h *hub) dropAll() {
	for sub := range h.all {
		sub.drop()
		h.remove(sub)
	}
}

// podNodeName returns the spec.nodeName of a stored pod ("" if unbound or
// unreadable).
func podNodeName(value []byte) string {
	name, _ := registry.StoredPodNodeName(value)
	return name
}
