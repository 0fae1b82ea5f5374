package scheduler

import (
	"time"

	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	toolscache "k8s.io/client-go/tools/cache"
)

// newHandlerScheduler returns a scheduler whose handlers are called by the
// test directly; nothing runs.
func newHandlerScheduler(t *testing.T) *Scheduler {
	t.Helper()
	client := fake.NewClientset()
	s, err := New(client, informers.NewSharedInformerFactory(client, 0), nil, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestHandlersRoutePods(t *testing.T) {
	s := newHandlerScheduler(t)
	s.onNodeAdd(testNode("a", "1", "1Gi", 10))
	s.onPodAdd(testPod("pending", "", ""))
	s.onPodAdd(testPod("other", "", "", func(p *corev1.Pod) { p.Spec.SchedulerName = "other" }))
	s.onPodAdd(testPod("bound", "500m", "", onNode("a")))
	s.onPodAdd(testPod("done", "", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }))
	wantCounts(t, s.queue, 1, 0, 0)
	if got := s.cache.nodes["a"].used.milliCPU; got != 500 {
		t.Errorf("cpu used on a = %dm, want 500m from the bound pod", got)
	}

	// Bound by someone else: leaves the queue, counts on its node.
	old := testPod("pending", "", "")
	s.onPodUpdate(old, testPod("pending", "200m", "", onNode("a")))
	wantCounts(t, s.queue, 0, 0, 0)
	if got := s.cache.nodes["a"].used.milliCPU; got != 700 {
		t.Errorf("cpu used on a = %dm, want 700m", got)
	}

	s.onPodDelete(toolscache.DeletedFinalStateUnknown{Key: "default/bound", Obj: testPod("bound", "500m", "", onNode("a"))})
	if got := s.cache.nodes["a"].used.milliCPU; got != 200 {
		t.Errorf("cpu used on a after delete = %dm, want 200m", got)
	}
}

func TestHandlersRetryUnschedulable(t *testing.T) {
	s := newHandlerScheduler(t)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s.queue.now = clk.now
	s.onPodAdd(testPod("p", "", ""))
	s.queue.unschedulable(popNow(t, s.queue))
	clk.step(time.Minute) // every back-off below is over before the change

	// A heartbeat-like update changes nothing that matters.
	n := testNode("a", "1", "1Gi", 10, cordoned)
	s.onNodeAdd(n)
	s.queue.unschedulable(popNow(t, s.queue))
	same := n.DeepCopy()
	same.Status.Conditions[0].Message = "still ready"
	clk.step(time.Minute)
	s.onNodeUpdate(n, same)
	wantCounts(t, s.queue, 0, 0, 1)

	uncordoned := same.DeepCopy()
	uncordoned.Spec.Unschedulable = false
	s.onNodeUpdate(same, uncordoned)
	wantCounts(t, s.queue, 1, 0, 0)

	s.queue.unschedulable(popNow(t, s.queue))
	clk.step(time.Minute)
	s.onPodDelete(testPod("x", "", "", onNode("a")))
	wantCounts(t, s.queue, 1, 0, 0)

	s.queue.unschedulable(popNow(t, s.queue))
	clk.step(time.Minute)
	running := testPod("y", "", "", onNode("a"))
	finished := running.DeepCopy()
	finished.Status.Phase = corev1.PodFailed
	s.onPodUpdate(running, finished)
	wantCounts(t, s.queue, 1, 0, 0)
}

// A pending pod reported with status.nominatedNodeName holds room on that
// node; when it goes, waiting pods are tried again.
func TestHandlersNominatedPods(t *testing.T) {
	s := newHandlerScheduler(t)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s.queue.now = clk.now
	s.onNodeAdd(testNode("a", "1", "1Gi", 10))
	nominated := testPod("nominated", "1", "", withPriority(10), func(p *corev1.Pod) { p.Status.NominatedNodeName = "a" })
	s.onPodAdd(nominated)
	if got := s.cache.nominatedNode(nominated.UID); got != "a" {
		t.Fatalf("nominated node = %q, want a", got)
	}
	s.queue.unschedulable(popNow(t, s.queue))
	s.onPodAdd(testPod("waiting", "1", ""))
	s.queue.unschedulable(popNow(t, s.queue))
	clk.step(time.Minute)
	wantCounts(t, s.queue, 0, 0, 2)

	// An update without the nomination (older status) keeps it.
	s.onPodUpdate(nominated, testPod("nominated", "1", "", withPriority(10)))
	if got := s.cache.nominatedNode(nominated.UID); got != "a" {
		t.Errorf("nominated node after an update without it = %q, want a kept", got)
	}
	s.onPodDelete(nominated)
	if got := s.cache.nominatedNode(nominated.UID); got != "" {
		t.Errorf("nominated node after delete = %q, want none", got)
	}
	wantCounts(t, s.queue, 1, 0, 0)
}
