package store

import (
	"fmt"
	"sync"
	"time"
)

type opKind uint8

const (
	opCreate opKind = iota + 1
	opUpdate
	opDelete
)

// maxGroup bounds how many writes go into one transaction.
const maxGroup = 4096

// maxArena is the capacity above which the committer's scratch buffer is
// dropped after a group rather than kept for the next one.
const maxArena = 16 << 20

// result is what the committer reports back to a writer.
type result struct {
	rev  int64
	prev KV // the object removed by a delete
	err  error
}

// request is one queued write. The writer owns it until it is sent to the
// committer, and again once done has been signalled.
type request struct {
	kind     opKind
	key      string
	expected int64
	// rec is the keys-bucket record: keyHeaderLen bytes the committer
	// fills in, then a private copy of the value, which events share.
	rec []byte
	result
	done chan struct{} // capacity 1; signalled once the outcome is known
}

var requestPool = sync.Pool{New: func() any {
	return &request{done: make(chan struct{}, 1)}
}}

func newRequest(kind opKind, key string, value []byte, expected int64) *request {
	r := requestPool.Get().(*request)
	r.kind, r.key, r.expected = kind, key, expected
	if kind != opDelete {
		r.rec = make([]byte, keyHeaderLen+len(value))
		copy(r.rec[keyHeaderLen:], value)
	}
	return r
}

// releaseRequest returns r to the pool; only the writer, after done.
func releaseRequest(r *request) {
	*r = request{done: r.done}
	requestPool.Put(r)
}

// committer is the state of the committer goroutine; nothing else touches it.
type committer struct {
	rev    int64      // last committed revision
	group  []*request // the group being committed
	events []Event    // events of the group, in revision order
	// arena holds keys and log records until the commit: bbolt keeps
	// references to the values it is given until then.
	arena []byte
}

// runCommitter is the single writer: it takes whatever writes are waiting,
// commits them in one transaction and acknowledges each after the fsync.
func (s *Bolt) runCommitter() {
	defer close(s.committerDone)
	c := &s.committer
	for {
		select {
		case r := <-s.reqc:
			c.group = append(c.group[:0], r)
		case <-s.closing:
			s.failQueued()
			return
		}
	drain:
		for len(c.group) < maxGroup {
			select {
			case r := <-s.reqc:
				c.group = append(c.group, r)
			default:
				break drain
			}
		}
		s.commitGroup(c.group)
		clear(c.group)
	}
}

// failQueued fails the writes still queued when the store closes.
func (s *Bolt) failQueued() {
	for {
		select {
		case r := <-s.reqc:
			r.err = ErrClosed
			r.done <- struct{}{}
		default:
			return
		}
	}
}

// commitGroup applies group in one transaction, publishes its events and
// acknowledges every writer.
func (s *Bolt) commitGroup(group []*request) {
	c := &s.committer
	start := time.Now()
	if err := s.applyGroup(group); err != nil {
		s.lg.Error("commit failed", "err", err, "writes", len(group))
		for _, r := range group {
			if r.err == nil {
				r.result = result{err: fmt.Errorf("commit: %w", err)}
			}
		}
	} else if n := len(c.events); n > 0 {
		c.rev = c.events[n-1].Revision
		s.rev.Store(c.rev)
		s.hub.publish(c.events)
		s.m.observeCommit(time.Since(start), n)
	}
	for _, r := range group {
		r.done <- struct{}{} // r now belongs to its writer again
	}
	clear(c.events)
	c.events = c.events[:0]
	c.arena = c.arena[:0]
	if cap(c.arena) > maxArena {
		c.arena = nil
	}
}

// applyGroup runs the writes of group in order in one write transaction
// and commits it. A write whose precondition fails gets its error in
// r.err and changes nothing; any other error aborts the whole group.
func (s *Bolt) applyGroup(group []*request) (err error) {
	c := &s.committer
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			clear(c.events)
			c.events = c.events[:0]
		}
	}()
	b, err := openBuckets(tx)
	if err != nil {
		return err
	}
	b.log.FillPercent = 1.0 // revisions only append: fill pages completely
	rev := c.rev
	for _, r := range group {
		ok, err := c.apply(b, r, rev+1)
		if err != nil {
			return err
		}
		if ok {
			rev++
		}
	}
	if rev == c.rev {
		return tx.Rollback()
	}
	if err := b.meta.Put(metaRevision, c.keep(revKey(c.arena, rev))); err != nil {
		return err
	}
	return tx.Commit()
}

// keep marks the bytes appended to c.arena since its previous length as
// used and returns them; b must be the result of appending to c.arena.
func (c *committer) keep(b []byte) []byte {
	start := len(c.arena)
	c.arena = b
	return b[start:len(b):len(b)]
}

// apply performs one write at revision rev. It reports whether the write
// took place; a failed precondition is left in r.err.
func (c *committer) apply(b buckets, r *request, rev int64) (bool, error) {
	key := c.keep(append(c.arena, r.key...))
	cur := b.keys.Get(key)
	if r.kind == opCreate {
		if cur != nil {
			r.err = fmt.Errorf("key %q: %w", r.key, ErrExists)
			return false, nil
		}
		return true, c.create(b, r, key, rev)
	}
	if cur == nil {
		r.err = fmt.Errorf("key %q: %w", r.key, ErrNotFound)
		return false, nil
	}
	createRev, modRev, value, err := decodeKeyRecord(cur)
	if err != nil {
		return false, fmt.Errorf("key %q: %w", r.key, err)
	}
	if r.expected > 0 && r.expected != modRev {
		r.err = fmt.Errorf("key %q at revision %d, expected %d: %w", r.key, modRev, r.expected, ErrConflict)
		return false, nil
	}
	prev := KV{Key: r.key, Value: clone(value), CreateRevision: createRev, ModRevision: modRev}
	if r.kind == opUpdate {
		return true, c.update(b, r, key, rev, prev)
	}
	return true, c.remove(b, r, key, rev, prev)
}

func (c *committer) create(b buckets, r *request, key []byte, rev int64) error {
	value := r.rec[keyHeaderLen:]
	lr := logRecord{typ: logCreate, createRev: rev, key: key, value: value}
	if err := c.putLog(b, rev, &lr); err != nil {
		return err
	}
	setKeyHeader(r.rec, rev, rev)
	if err := b.keys.Put(key, r.rec); err != nil {
		return fmt.Errorf("key %q: %w", r.key, err)
	}
	r.rev = rev
	c.events = append(c.events, Event{
		Type: EventCreate, Key: r.key, Value: value, Revision: rev, CreateRevision: rev,
	})
	return nil
}

func (c *committer) update(b buckets, r *request, key []byte, rev int64, prev KV) error {
	value := r.rec[keyHeaderLen:]
	lr := logRecord{
		typ: logUpdate, createRev: prev.CreateRevision, prevModRev: prev.ModRevision,
		key: key, value: value, prev: prev.Value,
	}
	if err := c.putLog(b, rev, &lr); err != nil {
		return err
	}
	setKeyHeader(r.rec, prev.CreateRevision, rev)
	if err := b.keys.Put(key, r.rec); err != nil {
		return fmt.Errorf("key %q: %w", r.key, err)
	}
	r.rev = rev
	c.events = append(c.events, Event{
		Type: EventUpdate, Key: r.key, Value: value, PrevValue: prev.Value,
		Revision: rev, CreateRevision: prev.CreateRevision,
	})
	return nil
}

func (c *committer) remove(b buckets, r *request, key []byte, rev int64, prev KV) error {
	lr := logRecord{
		typ: logDelete, createRev: prev.CreateRevision, prevModRev: prev.ModRevision,
		key: key, prev: prev.Value,
	}
	if err := c.putLog(b, rev, &lr); err != nil {
		return err
	}
	if err := b.keys.Delete(key); err != nil {
		return fmt.Errorf("key %q: %w", r.key, err)
	}
	r.rev = rev
	r.prev = prev
	r.prev.Value = clone(prev.Value) // the caller's copy; the event keeps prev.Value
	c.events = append(c.events, Event{
		Type: EventDelete, Key: r.key, Value: prev.Value, PrevValue: prev.Value,
		Revision: rev, CreateRevision: prev.CreateRevision,
	})
	return nil
}

// putLog appends the log record of revision rev.
func (c *committer) putLog(b buckets, rev int64, lr *logRecord) error {
	k := c.keep(revKey(c.arena, rev))
	v := c.keep(appendLogRecord(c.arena, lr))
	if err := b.log.Put(k, v); err != nil {
		return fmt.Errorf("log revision %d: %w", rev, err)
	}
	return nil
}
