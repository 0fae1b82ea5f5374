package scheduler

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func newTestQueue() (*queue, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	q := newQueue(time.Second, 4*time.Second, time.Minute)
	q.now = clk.now
	return q, clk
}

func popNow(t *testing.T, q *queue) *qItem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	it, err := q.pop(ctx)
	if err != nil {
		t.Fatalf("pop: %v", err)
	}
	return it
}

func wantCounts(t *testing.T, q *queue, active, backoff, unsched int) {
	t.Helper()
	c := q.counts()
	if c[stateActive] != active || c[stateBackoff] != backoff || c[stateUnschedulable] != unsched {
		t.Fatalf("queue counts = active %d, backoff %d, unschedulable %d; want %d, %d, %d",
			c[stateActive], c[stateBackoff], c[stateUnschedulable], active, backoff, unsched)
	}
}

func TestQueueFIFO(t *testing.T) {
	q, _ := newTestQueue()
	for _, n := range []string{"a", "b", "c"} {
		q.add("default/"+n, testPod(n, "", ""))
	}
	q.remove("default/b")
	q.add("default/a", testPod("a", "1", "")) // refresh keeps the place
	for _, want := range []string{"default/a", "default/c"} {
		if it := popNow(t, q); it.key != want {
			t.Fatalf("pop = %s, want %s", it.key, want)
		}
	}
}

func TestQueueUnschedulableWaitsForChange(t *testing.T) {
	q, clk := newTestQueue()
	q.add("default/p", testPod("p", "", ""))
	q.unschedulable(popNow(t, q))
	wantCounts(t, q, 0, 0, 1)
	q.flush()
	wantCounts(t, q, 0, 0, 1)

	q.moveAll() // within the back-off: waits for it
	wantCounts(t, q, 0, 1, 0)
	clk.step(time.Second)
	q.flush()
	wantCounts(t, q, 1, 0, 0)

	it := popNow(t, q)
	q.unschedulable(it)
	clk.step(2 * time.Second) // second attempt backs off 2 s
	q.moveAll()
	wantCounts(t, q, 1, 0, 0)
	q.unschedulable(popNow(t, q))
	clk.step(time.Minute)
	q.flush()
	wantCounts(t, q, 1, 0, 0)
}

func TestQueueChangeDuringCycleBacksOff(t *testing.T) {
	q, _ := newTestQueue()
	q.add("default/p", testPod("p", "", ""))
	it := popNow(t, q)
	q.moveAll()
	q.unschedulable(it)
	wantCounts(t, q, 0, 1, 0)
}

func TestQueueSpecChangeRetries(t *testing.T) {
	q, _ := newTestQueue()
	pod := testPod("p", "", "")
	q.add("default/p", pod)
	q.unschedulable(popNow(t, q))
	status := pod.DeepCopy()
	status.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.add("default/p", status)
	wantCounts(t, q, 0, 0, 1)
	q.add("default/p", testPod("p", "", "", tolerating(corev1.Toleration{Operator: corev1.TolerationOpExists})))
	wantCounts(t, q, 1, 0, 0)
}

func TestQueueRetryAndBackoffCap(t *testing.T) {
	q, clk := newTestQueue()
	q.retry("default/p", testPod("p", "", ""))
	wantCounts(t, q, 0, 1, 0)
	clk.step(time.Second)
	q.flush()
	wantCounts(t, q, 1, 0, 0)
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {10, 4 * time.Second}} {
		if got := q.backoff(tc.attempts); got != tc.want {
			t.Errorf("backoff(%d) = %v, want %v", tc.attempts, got, tc.want)
		}
	}
}

func TestQueuePopEndsWithContext(t *testing.T) {
	q, _ := newTestQueue()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.pop(ctx); err == nil {
		t.Errorf("pop on an empty queue with an ended context returned no error")
	}
}

// Active pods come out highest priority first, in arrival order among
// equals, as kube-scheduler's active queue.
func TestQueuePriorityOrder(t *testing.T) {
	q, _ := newTestQueue()
	prio := func(name string, v int32) *corev1.Pod {
		p := testPod(name, "", "")
		p.Spec.Priority = &v
		return p
	}
	q.add("default/low1", prio("low1", 1))
	q.add("default/none", testPod("none", "", ""))
	q.add("default/high", prio("high", 100))
	q.add("default/low2", prio("low2", 1))
	q.add("default/negative", prio("negative", -5))
	first := popNow(t, q)
	q.add("default/mid", prio("mid", 50))
	got := []string{first.key}
	for range 5 {
		got = append(got, popNow(t, q).key)
	}
	want := []string{"default/high", "default/mid", "default/low1", "default/low2", "default/none", "default/negative"}
	if !slices.Equal(got, want) {
		t.Errorf("pop order = %v, want %v", got, want)
	}
}
