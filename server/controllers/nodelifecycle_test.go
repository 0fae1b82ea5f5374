package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/minik-dev/minik/server/record"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeHeartbeats stands in for the node service.
type fakeHeartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (h *fakeHeartbeats) LastHeartbeat(node string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.last[node]
	return t, ok
}

func (h *fakeHeartbeats) beat(node string, t time.Time) {
	h.mu.Lock()
	h.last[node] = t
	h.mu.Unlock()
}

func startNodeLifecycle(e *env, opts NodeLifecycleOptions) {
	e.t.Helper()
	rec := record.New(e.client, ComponentControllerManager, e.lg, record.Options{})
	opts.Recorder = rec
	opts.MonitorPeriod = 20 * time.Millisecond
	f := e.factory.Core().V1()
	c, err := NewNodeLifecycleController(e.client, f.Nodes(), f.Pods(), e.lg, opts)
	if err != nil {
		e.t.Fatalf("NewNodeLifecycleController: %v", err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) }, rec.Run)
}

// createNode creates a Ready node whose last heartbeat was at beat.
func (e *env) createNode(name string, beat time.Time) {
	e.t.Helper()
	nodes := e.client.CoreV1().Nodes()
	n, err := nodes.Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create node: %v", err)
	}
	e.setNodeReady(n, beat)
}

func (e *env) setNodeReady(n *corev1.Node, beat time.Time) {
	e.t.Helper()
	n.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.NewTime(beat), LastTransitionTime: metav1.NewTime(beat),
	}}
	if _, err := e.client.CoreV1().Nodes().UpdateStatus(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("node status: %v", err)
	}
}

func (e *env) getNode(name string) *corev1.Node {
	e.t.Helper()
	n, err := e.client.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get node: %v", err)
	}
	return n
}

func unreachableTaints(n *corev1.Node) []string {
	var out []string
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeUnreachable {
			s := string(t.Effect)
			if t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded == nil {
				s += "(no timeAdded)"
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func (e *env) waitUnreachable(name string) {
	e.t.Helper()
	e.eventually(name+" unreachable", func() error {
		n := e.getNode(name)
		c := readyCondition(n)
		if c == nil || c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status." {
			return fmt.Errorf("ready condition = %+v", c)
		}
		if got, want := unreachableTaints(n), []string{"NoExecute", "NoSchedule"}; !slices.Equal(got, want) {
			return fmt.Errorf("unreachable taints = %v, want %v", got, want)
		}
		return nil
	})
}

func (e *env) waitNoTaints(name string) {
	e.t.Helper()
	e.eventually(name+" untainted", func() error {
		if got := unreachableTaints(e.getNode(name)); len(got) != 0 {
			return fmt.Errorf("unreachable taints = %v, want none", got)
		}
		return nil
	})
}

// terminating returns the names of the pods being deleted, sorted.
func (e *env) terminating() []string {
	e.t.Helper()
	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}

func (e *env) waitTerminating(want ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("terminating %v", want), func() error {
		if got := e.terminating(); !slices.Equal(got, want) {
			return fmt.Errorf("terminating pods = %v, want %v", got, want)
		}
		return nil
	})
}

func tolerateFor(secs *int64) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = "n1"
		p.Spec.Tolerations = []corev1.Toleration{{
			Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs,
		}}
	}
}

func TestNodeLifecycleHeartbeats(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	hb := &fakeHeartbeats{last: map[string]time.Time{}}
	e.createNode("n1", clock.Now())
	e.createNode("n2", clock.Now())
	onN1 := func(p *corev1.Pod) { p.Spec.NodeName = "n1" }
	e.createPod("default-toleration", nil, onN1)
	e.createPod("short", nil, tolerateFor(ptr[int64](10)))
	e.createPod("long", nil, tolerateFor(ptr[int64](3600)))
	e.createPod("forever", nil, tolerateFor(nil))
	e.createPod("elsewhere", nil, func(p *corev1.Pod) { p.Spec.NodeName = "n2" })
	hb.beat("n1", clock.Now())
	hb.beat("n2", clock.Now())
	startNodeLifecycle(e, NodeLifecycleOptions{
		GracePeriod: 40 * time.Second, PodEvictionTimeout: 60 * time.Second,
		Heartbeats: hb, Now: clock.Now,
	})

	// n2 keeps beating; n1 falls silent.
	clock.Advance(41 * time.Second)
	hb.beat("n2", clock.Now())
	e.waitUnreachable("n1")
	e.waitEvents(t, "n1", "NodeNotReady", 1)
	if got := unreachableTaints(e.getNode("n2")); len(got) != 0 {
		t.Errorf("n2 taints = %v, want none", got)
	}
	if got := e.terminating(); len(got) != 0 {
		t.Errorf("pods deleted before any toleration ran out: %v", got)
	}

	clock.Advance(11 * time.Second)
	hb.beat("n2", clock.Now())
	e.waitTerminating("short")
	clock.Advance(50 * time.Second)
	hb.beat("n2", clock.Now())
	e.waitTerminating("default-toleration", "short")

	hb.beat("n1", clock.Now())
	e.waitNoTaints("n1")
	if got := e.terminating(); !slices.Equal(got, []string{"default-toleration", "short"}) {
		t.Errorf("terminating = %v after the node came back", got)
	}
}

// TestNodeLifecycleConditionHeartbeat runs without Heartbeats: the Ready
// condition's lastHeartbeatTime tells when the node was last heard from.
func TestNodeLifecycleConditionHeartbeat(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e.createNode("n1", clock.Now())
	startNodeLifecycle(e, NodeLifecycleOptions{GracePeriod: 40 * time.Second, Now: clock.Now})

	clock.Advance(30 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := unreachableTaints(e.getNode("n1")); len(got) != 0 {
		t.Fatalf("taints within the grace period = %v", got)
	}
	clock.Advance(11 * time.Second)
	e.waitUnreachable("n1")
	n := e.getNode("n1")
	if got := readyCondition(n).LastHeartbeatTime.Time; !got.Equal(clock.Now().Add(-41 * time.Second)) {
		t.Errorf("lastHeartbeatTime = %v, want it kept", got)
	}

	// The node posts its status again.
	e.setNodeReady(n, clock.Now())
	e.waitNoTaints("n1")
	if c := readyCondition(e.getNode("n1")); c.Status != corev1.ConditionTrue {
		t.Errorf("ready = %s after the node posted Ready, want True", c.Status)
	}
}

// lifecycleTaints returns node's lifecycle taints as "key:Effect", sorted.
func lifecycleTaints(n *corev1.Node) []string {
	var out []string
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeUnreachable || t.Key == corev1.TaintNodeNotReady {
			out = append(out, t.Key+":"+string(t.Effect))
		}
	}
	slices.Sort(out)
	return out
}

func (e *env) waitLifecycleTaints(name string, want ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s taints %v", name, want), func() error {
		if got := lifecycleTaints(e.getNode(name)); !slices.Equal(got, want) {
			return fmt.Errorf("lifecycle taints = %v, want %v", got, want)
		}
		return nil
	})
}

// setNodeReadiness writes node's Ready condition, retrying while the
// controller's taint updates get in between.
func (e *env) setNodeReadiness(name string, status corev1.ConditionStatus, beat time.Time) {
	e.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := e.getNode(name)
		n.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: status, Reason: "KubeletNotReady", Message: "runtime down",
			LastHeartbeatTime: metav1.NewTime(beat), LastTransitionTime: metav1.NewTime(beat),
		}}
		if status == corev1.ConditionTrue {
			n.Status.Conditions[0].Reason, n.Status.Conditions[0].Message = "KubeletReady", ""
		}
		_, err := e.client.CoreV1().Nodes().UpdateStatus(e.ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatalf("node status: %v", err)
	}
}

func (e *env) setNodeNotReady(name string, beat time.Time) {
	e.t.Helper()
	e.setNodeReadiness(name, corev1.ConditionFalse, beat)
}

// TestNodeLifecycleNotReady: a node that keeps beating but reports
// Ready=False gets the not-ready taints (NoSchedule and NoExecute), and
// its pods go when their not-ready toleration runs out; silence swaps them
// for the unreachable taints, and Ready=True removes every lifecycle taint.
func TestNodeLifecycleNotReady(t *testing.T) {
	const (
		notReadyNoExecute  = corev1.TaintNodeNotReady + ":NoExecute"
		notReadyNoSchedule = corev1.TaintNodeNotReady + ":NoSchedule"
	)
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	hb := &fakeHeartbeats{last: map[string]time.Time{}}
	e.createNode("n1", clock.Now())
	e.createPod("default-toleration", nil, func(p *corev1.Pod) { p.Spec.NodeName = "n1" })
	e.createPod("short", nil, func(p *corev1.Pod) {
		p.Spec.NodeName = "n1"
		p.Spec.Tolerations = []corev1.Toleration{{
			Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr[int64](10),
		}}
	})
	e.createPod("unreachable-only", nil, tolerateFor(ptr[int64](5)))
	hb.beat("n1", clock.Now())
	startNodeLifecycle(e, NodeLifecycleOptions{
		GracePeriod: 40 * time.Second, PodEvictionTimeout: 60 * time.Second,
		Heartbeats: hb, Now: clock.Now,
	})
	e.waitLifecycleTaints("n1")

	e.setNodeNotReady("n1", clock.Now())
	e.waitLifecycleTaints("n1", notReadyNoExecute, notReadyNoSchedule)
	e.waitEvents(t, "n1", "NodeNotReady", 1)
	if c := readyCondition(e.getNode("n1")); c.Status != corev1.ConditionFalse {
		t.Errorf("ready = %s, want False kept", c.Status)
	}

	// The unreachable toleration (5s) does not apply to not-ready: only
	// "short" goes after 10s, the others after PodEvictionTimeout.
	clock.Advance(11 * time.Second)
	hb.beat("n1", clock.Now())
	e.waitTerminating("short")
	time.Sleep(100 * time.Millisecond)
	if got := e.terminating(); !slices.Equal(got, []string{"short"}) {
		t.Errorf("terminating = %v, want [short]", got)
	}

	// Silence: unreachable replaces not-ready.
	clock.Advance(41 * time.Second)
	e.waitLifecycleTaints("n1", corev1.TaintNodeUnreachable+":NoExecute", corev1.TaintNodeUnreachable+":NoSchedule")

	// Heard from and Ready again: no lifecycle taint is left.
	hb.beat("n1", clock.Now())
	e.setNodeReadiness("n1", corev1.ConditionTrue, clock.Now())
	e.waitLifecycleTaints("n1")
}

// The not-ready taint's NoExecute time is kept while the node stays not
// ready, so the tolerations count from when it was first added.
func TestNodeLifecycleNotReadyKeepsTimeAdded(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	hb := &fakeHeartbeats{last: map[string]time.Time{}}
	e.createNode("n1", clock.Now())
	hb.beat("n1", clock.Now())
	startNodeLifecycle(e, NodeLifecycleOptions{GracePeriod: 40 * time.Second, Heartbeats: hb, Now: clock.Now})
	added := clock.Now()
	e.setNodeNotReady("n1", added)
	e.waitLifecycleTaints("n1", corev1.TaintNodeNotReady+":NoExecute", corev1.TaintNodeNotReady+":NoSchedule")
	for range 3 {
		clock.Advance(5 * time.Second)
		hb.beat("n1", clock.Now())
		time.Sleep(50 * time.Millisecond)
	}
	for _, taint := range e.getNode("n1").Spec.Taints {
		if taint.Key == corev1.TaintNodeNotReady && (taint.TimeAdded == nil || !taint.TimeAdded.Time.Equal(added)) {
			t.Errorf("taint %s timeAdded = %v, want %v", taint.ToString(), taint.TimeAdded, added)
		}
	}
}

// A Ready=Unknown written with a fresh lastHeartbeatTime (the node service
// marking a silent node) is not a heartbeat: the unreachable taints stay.
func TestNodeLifecycleUnknownIsNoHeartbeat(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	hb := &fakeHeartbeats{last: map[string]time.Time{}}
	e.createNode("n1", clock.Now())
	hb.beat("n1", clock.Now())
	startNodeLifecycle(e, NodeLifecycleOptions{GracePeriod: 40 * time.Second, Heartbeats: hb, Now: clock.Now})
	clock.Advance(41 * time.Second)
	e.waitUnreachable("n1")
	e.setNodeReadiness("n1", corev1.ConditionUnknown, clock.Now())
	for range 5 {
		clock.Advance(time.Second)
		time.Sleep(40 * time.Millisecond)
		if got := unreachableTaints(e.getNode("n1")); len(got) != 2 {
			t.Fatalf("unreachable taints = %v after the server wrote Ready=Unknown, want both kept", got)
		}
	}
}
