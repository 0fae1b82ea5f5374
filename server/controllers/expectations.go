package controllers

import (
	"sync"
	"time"
)

// expectationsTTL bounds how long a controller waits for the informer to
// show its own writes before it trusts the cache again.
const expectationsTTL = 5 * time.Minute

// expectations remembers, per controller key, the pod creations and
// deletions a controller has asked for but its informer has not shown
// yet. While any are outstanding the controller does not act on its
// (stale) cache, so a lagging informer cannot make it create or delete
// twice. Safe for concurrent use.
type expectations struct {
	now func() time.Time

	mu sync.Mutex              // guards m
	m  map[string]*expectation // by controller key
}

type expectation struct {
	adds int
	dels map[string]bool // pod keys
	set  time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{now: now, m: map[string]*expectation{}}
}

// expect replaces key's expectations with adds creations and the deletion
// of the pods in dels.
func (e *expectations) expect(key string, adds int, dels []string) {
	x := &expectation{adds: adds, dels: make(map[string]bool, len(dels)), set: e.now()}
	for _, d := range dels {
		x.dels[d] = true
	}
	e.mu.Lock()
	e.m[key] = x
	e.mu.Unlock()
}

// creationObserved counts one expected creation as seen (or as failed).
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.adds--
	}
}

// deletionObserved counts the deletion of pod as seen (or as failed).
func (e *expectations) deletionObserved(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, pod)
	}
}

// satisfied reports whether key has nothing outstanding, or has waited
// longer than expectationsTTL.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	return (x.adds <= 0 && len(x.dels) == 0) || e.now().Sub(x.set) > expectationsTTL
}

// forget drops key's expectations.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	delete(e.m, key)
	e.mu.Unlock()
}
