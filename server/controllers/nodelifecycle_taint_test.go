package controllers

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testTaintKey = "example.com/evict"

// tolerateTestTaint puts the pod on node with a toleration of the test
// taint for secs (nil: forever).
func tolerateTestTaint(node string, secs *int64) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = node
		p.Spec.Tolerations = []corev1.Toleration{{
			Key: testTaintKey, Operator: corev1.TolerationOpEqual, Value: "v",
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs,
		}}
	}
}

func (e *env) setTaints(name string, taints ...corev1.Taint) {
	e.t.Helper()
	n := e.getNode(name)
	n.Spec.Taints = taints
	if _, err := e.client.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("taint node %s: %v", name, err)
	}
}

// TestTaintEvictionTolerationSeconds: pods on a node with a NoExecute
// taint of any key go at once if they don't tolerate it, after their
// tolerationSeconds if they do, never if their toleration has none; a
// taint removed in time cancels the eviction.
func TestTaintEvictionTolerationSeconds(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	hb := &fakeHeartbeats{last: map[string]time.Time{}}
	e.createNode("n1", clock.Now())
	e.createNode("n2", clock.Now())
	e.createPod("untolerating", nil, func(p *corev1.Pod) { p.Spec.NodeName = "n1" })
	e.createPod("five", nil, tolerateTestTaint("n1", ptr[int64](5)))
	e.createPod("twenty-five", nil, tolerateTestTaint("n1", ptr[int64](25)))
	e.createPod("forever", nil, tolerateTestTaint("n1", nil))
	e.createPod("cancelled", nil, tolerateTestTaint("n2", ptr[int64](10)))
	beat := func() {
		hb.beat("n1", clock.Now())
		hb.beat("n2", clock.Now())
	}
	beat()
	startNodeLifecycle(e, NodeLifecycleOptions{GracePeriod: 40 * time.Second, Heartbeats: hb, Now: clock.Now})

	added := metav1.NewTime(clock.Now())
	taint := corev1.Taint{Key: testTaintKey, Value: "v", Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	e.setTaints("n1", taint)
	e.setTaints("n2", taint)
	e.waitTerminating("untolerating")

	clock.Advance(6 * time.Second)
	beat()
	e.waitTerminating("five", "untolerating")
	five, err := e.client.CoreV1().Pods("default").Get(e.ctx, "five", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(five.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "DeletionByTaintManager"
	}) {
		t.Errorf("evicted pod's conditions = %+v, want DisruptionTarget reason DeletionByTaintManager", five.Status.Conditions)
	}
	e.waitEvents(t, "five", "TaintManagerEviction", 1)

	// The taint leaves n2 before "cancelled"'s 10 s are up; the clock
	// moves on once the controller's informer has seen that.
	e.setTaints("n2")
	e.eventually("n2 untainted in the informer", func() error {
		n, err := e.factory.Core().V1().Nodes().Lister().Get("n2")
		if err != nil || len(n.Spec.Taints) > 0 {
			return fmt.Errorf("n2 = %v, %v", n, err)
		}
		return nil
	})
	clock.Advance(20 * time.Second)
	beat()
	e.waitTerminating("five", "twenty-five", "untolerating")
	time.Sleep(100 * time.Millisecond) // n2 is checked every 20ms
	if got := e.terminating(); !slices.Equal(got, []string{"five", "twenty-five", "untolerating"}) {
		t.Errorf("terminating = %v; want the pod tolerating forever and the one whose taint was removed kept", got)
	}
}

// A NoExecute taint written without timeAdded counts from when the
// controller first saw it, and starts afresh once removed and added again.
func TestNoExecuteTaintsFirstSeen(t *testing.T) {
	c := &NodeLifecycleController{seen: map[taintID]time.Time{}}
	t0 := time.Unix(1_800_000_000, 0)
	tainted := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{
		{Key: "a", Effect: corev1.TaintEffectNoExecute},
		{Key: "b", Effect: corev1.TaintEffectNoSchedule},
	}}}
	sinceOf := func(node *corev1.Node, now time.Time) []time.Time {
		var out []time.Time
		for _, t := range c.noExecuteTaints(node, now) {
			out = append(out, t.since)
		}
		return out
	}
	if got := sinceOf(tainted, t0); !slices.Equal(got, []time.Time{t0}) {
		t.Fatalf("first sight: since = %v, want [%v]", got, t0)
	}
	if got := sinceOf(tainted, t0.Add(time.Minute)); !slices.Equal(got, []time.Time{t0}) {
		t.Errorf("second sight: since = %v, want [%v] kept", got, t0)
	}
	untainted := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	if got := sinceOf(untainted, t0.Add(2*time.Minute)); len(got) != 0 {
		t.Errorf("untainted node: %v, want no taints", got)
	}
	t3 := t0.Add(3 * time.Minute)
	if got := sinceOf(tainted, t3); !slices.Equal(got, []time.Time{t3}) {
		t.Errorf("tainted again: since = %v, want [%v]", got, t3)
	}
}
