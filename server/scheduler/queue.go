package scheduler

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// itemState is where a pod is in the queue.
type itemState int

const (
	stateActive        itemState = iota // waiting in the FIFO
	stateInFlight                       // popped, being scheduled
	stateBackoff                        // waiting for its back-off to end
	stateUnschedulable                  // waiting for the cluster to change
)

// qItem is a pending pod.
type qItem struct {
	key      string
	pod      *corev1.Pod // latest version seen
	state    itemState
	attempts int
	readyAt  time.Time // end of back-off
	since    time.Time // when it became unschedulable
	cycle    uint64    // moves counted when it was popped
}

// queue holds the pods waiting to be scheduled: active pods, highest
// spec.priority first and first in, first out among equals, pods backing
// off after a failed attempt, and unschedulable pods parked until a
// cluster change (moveAll) or a timeout sends them back. It is safe for
// concurrent use.
type queue struct {
	initialBackoff, maxBackoff, retryAfter time.Duration
	now                                    func() time.Time

	mu    sync.Mutex
	items map[string]*qItem // guarded by mu
	// fifos holds the active items per priority, and prios the
	// priorities that have a FIFO, highest first; guarded by mu. A FIFO
	// may hold items no longer active.
	fifos  map[int32][]*qItem
	prios  []int32
	moves  uint64        // guarded by mu; number of moveAll calls
	wakeup chan struct{} // signalled when fifo grows
}

func newQueue(initialBackoff, maxBackoff, retryAfter time.Duration) *queue {
	return &queue{
		initialBackoff: initialBackoff, maxBackoff: maxBackoff, retryAfter: retryAfter,
		now: time.Now, items: map[string]*qItem{}, fifos: map[int32][]*qItem{}, wakeup: make(chan struct{}, 1),
	}
}

// add queues a pod or refreshes the queued copy. An unschedulable pod whose
// spec or labels changed is tried again at once.
func (q *queue) add(key string, pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.items[key]
	if it == nil {
		it = &qItem{key: key, pod: pod}
		q.items[key] = it
		q.pushLocked(it)
		return
	}
	old := it.pod
	it.pod = pod
	if it.state == stateUnschedulable && podChanged(old, pod) {
		q.pushLocked(it)
	}
}

func podChanged(old, cur *corev1.Pod) bool {
	return !equality.Semantic.DeepEqual(old.Spec, cur.Spec) || !equality.Semantic.DeepEqual(old.Labels, cur.Labels)
}

// remove drops a pod from the queue.
func (q *queue) remove(key string) {
	q.mu.Lock()
	delete(q.items, key)
	q.mu.Unlock()
}

// q.mu must be held.
func (q *queue) pushLocked(it *qItem) {
	it.state = stateActive
	prio := podPriority(it.pod)
	fifo, ok := q.fifos[prio]
	if !ok {
		i, _ := slices.BinarySearchFunc(q.prios, prio, func(a, b int32) int { return cmp.Compare(b, a) })
		q.prios = slices.Insert(q.prios, i, prio)
	}
	q.fifos[prio] = append(fifo, it)
	select {
	case q.wakeup <- struct{}{}:
	default:
	}
}

// pop waits for an active pod and marks it in flight. It fails only when
// ctx ends.
func (q *queue) pop(ctx context.Context) (*qItem, error) {
	for {
		if it := q.tryPop(); it != nil {
			return it, nil
		}
		select {
		case <-q.wakeup:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (q *queue) tryPop() *qItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.prios) > 0 {
		prio := q.prios[0]
		fifo := q.fifos[prio]
		for len(fifo) > 0 {
			it := fifo[0]
			fifo[0] = nil
			fifo = fifo[1:]
			if it.state == stateActive && q.items[it.key] == it {
				q.fifos[prio] = fifo
				it.state, it.cycle = stateInFlight, q.moves
				return it
			}
		}
		delete(q.fifos, prio)
		q.prios = q.prios[1:]
	}
	return nil
}

func podPriority(pod *corev1.Pod) int32 {
	if pod != nil && pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}

// done removes a scheduled pod. A later failure to bind it comes back
// through retry.
func (q *queue) done(it *qItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.items[it.key] == it {
		delete(q.items, it.key)
	}
}

// unschedulable parks a pod that fit nowhere. If the cluster changed while
// it was being scheduled it only backs off.
func (q *queue) unschedulable(it *qItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.items[it.key] != it {
		return
	}
	it.attempts++
	now := q.now()
	it.readyAt = now.Add(q.backoff(it.attempts))
	it.since = now
	it.state = stateUnschedulable
	if q.moves != it.cycle {
		it.state = stateBackoff
	}
}

// retry queues a pod again after a back-off (a failed binding).
func (q *queue) retry(key string, pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.items[key]
	if it == nil {
		it = &qItem{key: key}
		q.items[key] = it
	}
	it.pod = pod
	it.attempts++
	it.readyAt = q.now().Add(q.backoff(it.attempts))
	it.state = stateBackoff
}

func (q *queue) backoff(attempts int) time.Duration {
	d := q.initialBackoff
	for i := 1; i < attempts && d < q.maxBackoff; i++ {
		d *= 2
	}
	return min(d, q.maxBackoff)
}

// moveAll sends unschedulable pods back to be tried again after a change
// in the cluster that may let them fit; pods still backing off wait for
// the back-off to end.
func (q *queue) moveAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moves++
	now := q.now()
	for _, it := range q.items {
		if it.state != stateUnschedulable {
			continue
		}
		if now.Before(it.readyAt) {
			it.state = stateBackoff
		} else {
			q.pushLocked(it)
		}
	}
}

// flush activates pods whose back-off ended and pods unschedulable for
// longer than retryAfter.
func (q *queue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, it := range q.items {
		switch {
		case it.state == stateBackoff && !now.Before(it.readyAt):
			q.pushLocked(it)
		case it.state == stateUnschedulable && now.Sub(it.since) >= q.retryAfter:
			q.pushLocked(it)
		}
	}
}

// counts returns the number of pods in each state, for tests and logs.
func (q *queue) counts() map[itemState]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := map[itemState]int{}
	for _, it := range q.items {
		m[it.state]++
	}
	return m
}
