package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// newPodGC makes a PodGCController on e's informers and starts them;
// tests call collect themselves, one pass at a time.
func newPodGC(e *env, opts PodGCOptions) *PodGCController {
	e.t.Helper()
	f := e.factory.Core().V1()
	c := NewPodGCController(e.client, f.Pods(), f.Nodes(), e.lg, opts)
	e.run()
	return c
}

// waitSeen waits until c's informers hold the pods and nodes as the API
// has them now (same resourceVersions).
func (e *env) waitSeen(c *PodGCController) {
	e.t.Helper()
	pods, err := e.client.CoreV1().Pods("").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	nodes, err := e.client.CoreV1().Nodes().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[string]string{}
	for _, p := range pods.Items {
		want["pod "+p.Namespace+"/"+p.Name] = p.ResourceVersion
	}
	for _, n := range nodes.Items {
		want["node "+n.Name] = n.ResourceVersion
	}
	e.eventually("informers in step with the API", func() error {
		got := map[string]string{}
		ps, _ := c.pods.List(labels.Everything())
		for _, p := range ps {
			got["pod "+p.Namespace+"/"+p.Name] = p.ResourceVersion
		}
		ns, _ := c.nodes.List(labels.Everything())
		for _, n := range ns {
			got["node "+n.Name] = n.ResourceVersion
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("informers hold %v, the API %v", got, want)
		}
		return nil
	})
}

// collect runs one pass once the informers are in step.
func (e *env) collect(c *PodGCController) {
	e.t.Helper()
	e.waitSeen(c)
	if err := c.collect(e.ctx); err != nil {
		e.t.Fatalf("collect() = %v", err)
	}
}

func onNode(name string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Spec.NodeName = name } }

func withFinalizer(p *corev1.Pod) { p.Finalizers = []string{"example.com/keep"} }

// deletePod deletes a pod gracefully: one bound to a node stays,
// terminating, until its node reports it stopped.
func (e *env) deletePod(name string) {
	e.t.Helper()
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete pod %q: %v", name, err)
	}
}

// mustPod reads a pod of default.
func (e *env) mustPod(name string) *corev1.Pod {
	e.t.Helper()
	p, err := e.getPod(name)
	if err != nil {
		e.t.Fatalf("get pod %q: %v", name, err)
	}
	return p
}

func TestPodGCOrphaned(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e.createNode("n1", clock.Now())
	e.createPod("on-n1", nil, onNode("n1"))
	e.createPod("orphan", nil, onNode("gone"), withFinalizer)
	e.createPod("orphan-2", nil, onNode("gone"))
	e.createPod("on-late", nil, onNode("late"))
	e.createPod("unscheduled", nil)
	c := newPodGC(e, PodGCOptions{Now: clock.Now, Quarantine: 40 * time.Second})

	// A missing node's pods wait out the quarantine: the node may come.
	e.collect(c)
	want := []string{"on-late", "on-n1", "orphan", "orphan-2", "unscheduled"}
	if got := e.podNames(); !slices.Equal(got, want) {
		t.Fatalf("pods after the first pass = %v, want %v", got, want)
	}
	e.createNode("late", clock.Now())
	clock.Advance(39 * time.Second)
	e.collect(c)
	if got := e.podNames(); !slices.Equal(got, want) {
		t.Fatalf("pods within the quarantine = %v, want %v", got, want)
	}
	clock.Advance(2 * time.Second)
	e.collect(c)
	if got, want := e.podNames(), []string{"on-late", "on-n1", "orphan", "unscheduled"}; !slices.Equal(got, want) {
		t.Errorf("pods after the quarantine = %v, want %v", got, want)
	}
	// The finalizer keeps the orphan, deleted and marked.
	p := e.mustPod("orphan")
	var cond *corev1.PodCondition
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			cond = &p.Status.Conditions[i]
		}
	}
	if p.DeletionTimestamp == nil || p.Status.Phase != corev1.PodFailed || cond == nil ||
		cond.Status != corev1.ConditionTrue || cond.Reason != "DeletionByPodGC" {
		t.Errorf("orphan: deletionTimestamp %v, phase %q, DisruptionTarget %+v; want deleted, Failed, True DeletionByPodGC",
			p.DeletionTimestamp, p.Status.Phase, cond)
	}
	if p := e.mustPod("on-late"); p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed {
		t.Errorf("on-late, on a node that came within the quarantine: deleted %v, phase %q", p.DeletionTimestamp, p.Status.Phase)
	}
}

func TestPodGCTerminating(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	outOfService := corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
	for _, n := range []struct {
		name  string
		ready corev1.ConditionStatus
		taint bool
	}{
		{"down-oos", corev1.ConditionFalse, true},
		{"unknown-oos", corev1.ConditionUnknown, true},
		{"ready-oos", corev1.ConditionTrue, true},
		{"down", corev1.ConditionFalse, false},
	} {
		e.createNode(n.name, clock.Now())
		node := e.getNode(n.name)
		if n.taint {
			node.Spec.Taints = []corev1.Taint{outOfService}
			var err error
			if node, err = e.client.CoreV1().Nodes().Update(e.ctx, node, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		node.Status.Conditions[0].Status = n.ready
		if _, err := e.client.CoreV1().Nodes().UpdateStatus(e.ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.createPod("terminating-on-"+n.name, nil, onNode(n.name))
		e.deletePod("terminating-on-" + n.name)
		e.createPod("running-on-"+n.name, nil, onNode(n.name))
	}
	e.createPod("unscheduled", nil, withFinalizer)
	e.deletePod("unscheduled")
	c := newPodGC(e, PodGCOptions{Now: clock.Now})

	e.collect(c)
	want := []string{
		"running-on-down", "running-on-down-oos", "running-on-ready-oos", "running-on-unknown-oos",
		"terminating-on-down", "terminating-on-ready-oos", "unscheduled",
	}
	if got := e.podNames(); !slices.Equal(got, want) {
		t.Errorf("pods = %v, want %v", got, want)
	}
	// Held by its finalizer, the unscheduled pod is at least Failed.
	if p := e.mustPod("unscheduled"); p.Status.Phase != corev1.PodFailed {
		t.Errorf("unscheduled terminating pod: phase %q, want Failed", p.Status.Phase)
	}
	for _, name := range []string{"running-on-down-oos", "running-on-unknown-oos"} {
		if p := e.mustPod(name); p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed {
			t.Errorf("%s: deleted %v, phase %q; want it left to the taint's eviction", name, p.DeletionTimestamp, p.Status.Phase)
		}
	}
}

func TestPodGCTerminatedThreshold(t *testing.T) {
	e := newEnv(t)
	e.createNode("n1", time.Now())
	terminated := map[string]corev1.PodPhase{
		"t1": corev1.PodSucceeded, "t2": corev1.PodFailed, "t3": corev1.PodSucceeded, "t4": corev1.PodSucceeded, "z-evicted": corev1.PodFailed,
	}
	// Created in name order, so the oldest come first by either key.
	for _, name := range []string{"running", "t1", "t2", "t3", "t4", "z-evicted"} {
		e.createPod(name, nil, onNode("n1"))
		if phase, ok := terminated[name]; ok {
			p := e.mustPod(name)
			p.Status.Phase = phase
			if name == "z-evicted" {
				p.Status.Reason = "Evicted"
			}
			if _, err := e.client.CoreV1().Pods("default").UpdateStatus(e.ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		threshold int
		want      []string
	}{
		{-1, []string{"running", "t1", "t2", "t3", "t4", "z-evicted"}},
		{5, []string{"running", "t1", "t2", "t3", "t4", "z-evicted"}},
		{3, []string{"running", "t2", "t3", "t4"}},
		{1, []string{"running", "t4"}},
	}
	c := newPodGC(e, PodGCOptions{})
	for _, tc := range tests {
		c.opts.TerminatedPodThreshold = tc.threshold
		e.collect(c)
		if got := e.podNames(); !slices.Equal(got, tc.want) {
			t.Errorf("threshold %d: pods = %v, want %v", tc.threshold, got, tc.want)
		}
	}
}

func TestEvictedThenOldest(t *testing.T) {
	at := func(s int64) metav1.Time { return metav1.NewTime(time.Unix(s, 0)) }
	pod := func(name string, created int64, evicted bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: at(created)}}
		p.Status.Phase = corev1.PodSucceeded
		if evicted {
			p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Evicted"
		}
		return p
	}
	pods := []*corev1.Pod{pod("new", 30, false), pod("b-old", 10, false), pod("a-old", 10, false), pod("evicted-new", 40, true), pod("mid", 20, false)}
	slices.SortFunc(pods, evictedThenOldest)
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	if want := []string{"evicted-new", "a-old", "b-old", "mid", "new"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// Run collects every Period.
func TestPodGCRuns(t *testing.T) {
	e := newEnv(t)
	e.createPod("unscheduled", nil, withFinalizer)
	e.deletePod("unscheduled")
	f := e.factory.Core().V1()
	c := NewPodGCController(e.client, f.Pods(), f.Nodes(), e.lg, PodGCOptions{Period: 10 * time.Millisecond})
	e.run(func(ctx context.Context) error { return c.Run(ctx, 1) })
	e.eventually("the unscheduled terminating pod Failed", func() error {
		if p := e.mustPod("unscheduled"); p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %q", p.Status.Phase)
		}
		return nil
	})
}
