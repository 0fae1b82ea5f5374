package apiserver

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
)

// revCacheSize is how many recent changes a revCache holds at most.
const revCacheSize = 4096

// DefaultCacheBytes is the default of Config.CacheBytes.
const DefaultCacheBytes = 32 << 20

// cacheAge is how long a revCache keeps a value at most: the watchers and
// writes that share it come within moments of the change, and an idle
// server need not hold the last burst of changes.
const cacheAge = time.Minute

// eventKey names one change: a storage key at a revision.
type eventKey struct {
	key string
	rev int64
}

// revCache holds values derived from recent changes (their decoded
// objects, their protobuf envelopes), so that each is made once however
// many readers and watchers need it. A storage key at a revision always
// names the same stored value, so entries never go stale; the oldest are
// evicted when the cache holds revCacheSize entries or its values weigh
// more than its byte limit, and a value heavier than the limit is not
// kept: the count alone let a few thousand large objects hold gigabytes.
// Safe for concurrent use.
type revCache[V any] struct {
	weigh func(V) int // the bytes a value holds, about
	limit int

	mu    sync.Mutex
	m     map[eventKey]revEntry[V] // guarded by mu; values are shared and read-only
	order []cacheSlot              // guarded by mu; insertion order, oldest at head
	head  int                      // guarded by mu; first live slot of order
	bytes int                      // guarded by mu; the weight of the values in m
}

type cacheSlot struct {
	key eventKey
	at  time.Time // when it was added
}

type revEntry[V any] struct {
	v      V
	weight int
}

// newRevCache returns a cache whose values, as weigh reckons them, hold at
// most limit bytes.
func newRevCache[V any](limit int, weigh func(V) int) *revCache[V] {
	return &revCache[V]{weigh: weigh, limit: limit, m: make(map[eventKey]revEntry[V])}
}

// bytesLen weighs an encoded value.
func bytesLen(b []byte) int { return len(b) }

// objectWeight estimates what a decoded object holds: its protobuf size
// (the bytes of its strings and little more), twice over for the Go
// structures around them.
func objectWeight(obj runtime.Object) int {
	if s, ok := obj.(interface{ Size() int }); ok {
		return 2*s.Size() + 512
	}
	return 4096
}

// peek returns the value for key at rev if it is held. It must not be
// changed.
func (c *revCache[V]) peek(key string, rev int64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[eventKey{key, rev}]
	return e.v, ok
}

// get returns the value for key at rev, calling make on a miss; a failure
// is not kept. The returned value must not be changed.
func (c *revCache[V]) get(key string, rev int64, make func() (V, error)) (V, error) {
	k := eventKey{key, rev}
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return e.v, nil
	}
	v, err := make()
	if err != nil {
		return v, err
	}
	c.add(k, v)
	return v, nil
}

// add keeps v under k unless it is there already or weighs more than the
// limit, evicting the oldest entries to make room.
func (c *revCache[V]) add(k eventKey, v V) {
	w := c.weigh(v)
	if w > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	for len(c.m) > 0 && (len(c.m) >= revCacheSize || c.bytes+w > c.limit) {
		c.evictOldestLocked()
	}
	c.m[k] = revEntry[V]{v: v, weight: w}
	c.bytes += w
	c.order = append(c.order, cacheSlot{key: k, at: time.Now()})
}

// expire evicts the values added before cutoff.
func (c *revCache[V]) expire(cutoff time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.m) > 0 && c.order[c.head].at.Before(cutoff) {
		c.evictOldestLocked()
	}
}

// evictOldestLocked drops the oldest entry. c.mu must be held.
func (c *revCache[V]) evictOldestLocked() {
	k := c.order[c.head].key
	c.order[c.head] = cacheSlot{}
	c.head++
	if c.head > len(c.order)/2 {
		// Reuse the slots before head once they are half of order.
		n := copy(c.order, c.order[c.head:])
		clear(c.order[n:])
		c.order, c.head = c.order[:n], 0
	}
	c.bytes -= c.m[k].weight
	delete(c.m, k)
}

// size returns the entries held and their weight in bytes.
func (c *revCache[V]) size() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.bytes
}
