package scheduler

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

const foo corev1.ResourceName = "example.com/foo"

// pinnedTo makes the pod require the named node, as the preemption
// conformance specs do.
func pinnedTo(node string) func(*corev1.Pod) {
	return requiring(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{
		Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
	}}})
}

func terminating(p *corev1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

func startedAt(sec int64) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		t := metav1.Unix(sec, 0)
		p.Status.StartTime = &t
	}
}

func never(p *corev1.Pod) {
	pol := corev1.PreemptNever
	p.Spec.PreemptionPolicy = &pol
}

// fooPod is a pod asking for amount of example.com/foo with a priority.
func fooPod(name, amount string, priority int32, opts ...func(*corev1.Pod)) *corev1.Pod {
	return testPod(name, "", "", append([]func(*corev1.Pod){requestingScalar(foo, amount), withPriority(priority)}, opts...)...)
}

func TestPreemptVictims(t *testing.T) {
	fooNode := func(name, amount string) *corev1.Node { return testNode(name, "4", "8Gi", 110, offering(foo, amount)) }
	tests := []struct {
		name     string
		nodes    []*corev1.Node
		existing []*corev1.Pod
		budgets  []*policyv1.PodDisruptionBudget
		pod      *corev1.Pod
		wantNode string // "" when preemption makes room nowhere
		victims  []string
	}{
		{
			// The basic conformance case: the node whose victim has
			// the lowest priority wins, and only what must go goes.
			name:  "lowest priority victim",
			nodes: []*corev1.Node{fooNode("a", "5"), fooNode("b", "5")},
			existing: []*corev1.Pod{
				fooPod("a-low", "2", 1, onNode("a")), fooPod("a-mid", "2", 100, onNode("a")),
				fooPod("b-mid1", "2", 100, onNode("b")), fooPod("b-mid2", "2", 100, onNode("b")),
			},
			pod:      fooPod("high", "2", 1000),
			wantNode: "a", victims: []string{"a-low"},
		},
		{
			// The ReplicaSet conformance case: 200+300+450 of 1000 used,
			// 500 wanted; keeping the 450 pod is enough.
			name:  "most important pods are put back first",
			nodes: []*corev1.Node{fooNode("a", "1000")},
			existing: []*corev1.Pod{
				fooPod("p1", "200", 1, onNode("a")), fooPod("p2", "300", 2, onNode("a")), fooPod("p3", "450", 3, onNode("a")),
			},
			pod:      fooPod("p4", "500", 4),
			wantNode: "a", victims: []string{"p2", "p1"},
		},
		{
			name:     "equal priority is never preempted",
			nodes:    []*corev1.Node{fooNode("a", "1")},
			existing: []*corev1.Pod{fooPod("same", "1", 10, onNode("a"))},
			pod:      fooPod("p", "1", 10),
		},
		{
			name:     "higher priority is never preempted",
			nodes:    []*corev1.Node{fooNode("a", "1")},
			existing: []*corev1.Pod{fooPod("higher", "1", 11, onNode("a"))},
			pod:      fooPod("p", "1", 10),
		},
		{
			name:     "evicting everything is not enough",
			nodes:    []*corev1.Node{fooNode("a", "1")},
			existing: []*corev1.Pod{fooPod("low", "1", 1, onNode("a"))},
			pod:      fooPod("p", "2", 10),
		},
		{
			name:     "a node the pod can't use for other reasons is not a candidate",
			nodes:    []*corev1.Node{testNode("a", "4", "8Gi", 110, offering(foo, "1"), tainted("k", "v", corev1.TaintEffectNoSchedule))},
			existing: []*corev1.Pod{fooPod("low", "1", 1, onNode("a"))},
			pod:      fooPod("p", "1", 10),
		},
		{
			name:  "pinned pod preempts on its node only",
			nodes: []*corev1.Node{fooNode("a", "1"), fooNode("b", "1")},
			existing: []*corev1.Pod{
				fooPod("a-low", "1", 1, onNode("a")), fooPod("b-mid", "1", 5, onNode("b")),
			},
			pod:      fooPod("p", "1", 10, pinnedTo("b")),
			wantNode: "b", victims: []string{"b-mid"},
		},
		{
			name:  "fewer victims at equal priority",
			nodes: []*corev1.Node{fooNode("a", "2"), fooNode("b", "2")},
			existing: []*corev1.Pod{
				fooPod("a1", "1", 1, onNode("a")), fooPod("a2", "1", 1, onNode("a")),
				fooPod("b1", "2", 1, onNode("b")),
			},
			pod:      fooPod("p", "2", 10),
			wantNode: "b", victims: []string{"b1"},
		},
		{
			name:  "lower sum of priorities before fewer victims",
			nodes: []*corev1.Node{fooNode("a", "2"), fooNode("b", "2")},
			existing: []*corev1.Pod{
				fooPod("a1", "1", 1, onNode("a")), fooPod("a2", "1", 1, onNode("a")),
				fooPod("b1", "1", 1, onNode("b")), fooPod("b2", "1", 2, onNode("b")),
			},
			pod:      fooPod("p", "2", 10),
			wantNode: "a", victims: []string{"a1", "a2"},
		},
		{
			name:  "latest started victim at equal cost",
			nodes: []*corev1.Node{fooNode("a", "1"), fooNode("b", "1")},
			existing: []*corev1.Pod{
				fooPod("old", "1", 1, onNode("a"), startedAt(100)), fooPod("new", "1", 1, onNode("b"), startedAt(200)),
			},
			pod:      fooPod("p", "1", 10),
			wantNode: "b", victims: []string{"new"},
		},
		{
			name:  "terminating pods are not victims",
			nodes: []*corev1.Node{fooNode("a", "2")},
			existing: []*corev1.Pod{
				fooPod("going", "1", 1, onNode("a"), terminating), fooPod("low", "1", 1, onNode("a")),
			},
			pod: fooPod("p", "2", 10),
		},
		{
			name:  "a node without budget violations first",
			nodes: []*corev1.Node{fooNode("a", "1"), fooNode("b", "1")},
			existing: []*corev1.Pod{
				fooPod("a-db", "1", 1, onNode("a"), withLabel("app", "db")), fooPod("b-web", "1", 5, onNode("b")),
			},
			budgets:  []*policyv1.PodDisruptionBudget{testBudget("db", "app", "db", 0)},
			pod:      fooPod("p", "1", 10),
			wantNode: "b", victims: []string{"b-web"},
		},
		{
			name:  "a budget that allows it",
			nodes: []*corev1.Node{fooNode("a", "1"), fooNode("b", "1")},
			existing: []*corev1.Pod{
				fooPod("a-db", "1", 1, onNode("a"), withLabel("app", "db")), fooPod("b-web", "1", 5, onNode("b")),
			},
			budgets:  []*policyv1.PodDisruptionBudget{testBudget("db", "app", "db", 1)},
			pod:      fooPod("p", "1", 10),
			wantNode: "a", victims: []string{"a-db"},
		},
		{
			name:  "pods a budget protects are kept before others",
			nodes: []*corev1.Node{fooNode("a", "2")},
			existing: []*corev1.Pod{
				fooPod("db", "1", 1, onNode("a"), withLabel("app", "db")), fooPod("web", "1", 2, onNode("a")),
			},
			budgets:  []*policyv1.PodDisruptionBudget{testBudget("db", "app", "db", 0)},
			pod:      fooPod("p", "1", 10),
			wantNode: "a", victims: []string{"web"},
		},
		{
			name:  "a budget violated when nothing else makes room",
			nodes: []*corev1.Node{fooNode("a", "1")},
			existing: []*corev1.Pod{
				fooPod("db", "1", 1, onNode("a"), withLabel("app", "db")),
			},
			budgets:  []*policyv1.PodDisruptionBudget{testBudget("db", "app", "db", 0)},
			pod:      fooPod("p", "1", 10),
			wantNode: "a", victims: []string{"db"},
		},
		{
			name:     "cpu counts as well",
			nodes:    []*corev1.Node{testNode("a", "1", "8Gi", 110)},
			existing: []*corev1.Pod{testPod("low", "600m", "", onNode("a"), withPriority(1))},
			pod:      testPod("p", "600m", "", withPriority(10)),
			wantNode: "a", victims: []string{"low"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(tc.nodes, tc.existing)
			s := &selector{cache: c, budgets: budgetLister(t, tc.budgets)}
			p := newPodInfo(tc.pod)
			if _, err := s.selectNode(p); err == nil {
				t.Fatalf("pod fits without preemption")
			}
			before := usedByNode(c)
			node, victims := s.preempt(p)
			// Victims of equal importance come in no set order.
			var names []string
			for _, v := range victims {
				names = append(names, v.Name)
			}
			slices.Sort(names)
			slices.Sort(tc.victims)
			if node != tc.wantNode || !slices.Equal(names, tc.victims) {
				t.Errorf("preempt() = %q %q, want %q %q", node, names, tc.wantNode, tc.victims)
			}
			if diff := cmp.Diff(before, usedByNode(c), cmp.AllowUnexported(resources{})); diff != "" {
				t.Errorf("preempt changed what nodes use (-before +after):\n%s", diff)
			}
			if got := c.nominatedNode(tc.pod.UID); got != tc.wantNode {
				t.Errorf("nominated node = %q, want %q", got, tc.wantNode)
			}
		})
	}
}

// nodeUse is what a node counts as used, for checking that a simulation
// leaves it as it was.
type nodeUse struct {
	Used    resources
	Scalars map[corev1.ResourceName]int64
	Pods    int
}

func usedByNode(c *cache) map[string]nodeUse {
	m := map[string]nodeUse{}
	for name, n := range c.nodes {
		m[name] = nodeUse{Used: n.used, Scalars: maps(n.scalarUsed), Pods: len(n.pods)}
	}
	return m
}

func maps(m map[corev1.ResourceName]int64) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestNominatedPodHoldsRoom(t *testing.T) {
	c := newTestCache([]*corev1.Node{testNode("a", "4", "8Gi", 110, offering(foo, "1000"))}, []*corev1.Pod{
		fooPod("p1", "200", 1, onNode("a")), fooPod("p2", "300", 2, onNode("a")), fooPod("p3", "450", 3, onNode("a")),
	})
	s := &selector{cache: c}
	p4 := fooPod("p4", "500", 4)
	if node, _ := s.preempt(newPodInfo(p4)); node != "a" {
		t.Fatalf("preempt(p4) = %q, want a", node)
	}
	// The victims are gone; replacements of them come back.
	c.removePod("uid-p1")
	c.removePod("uid-p2")
	if node, err := s.selectNode(newPodInfo(fooPod("p1b", "200", 1))); err == nil {
		t.Errorf("replacement of p1 scheduled to %q into the room p4 made, want it kept for p4", node)
	}
	if !c.mayPreempt(newPodInfo(fooPod("p2b", "300", 2))) {
		t.Errorf("mayPreempt(p2b) = false, want true (it has no nomination)")
	}
	if node, _ := s.preempt(newPodInfo(fooPod("p2b", "300", 2))); node != "" {
		t.Errorf("replacement of p2 preempts on %q, want nowhere (p4's room is reserved)", node)
	}
	// A pod of higher priority than p4 doesn't see p4's reservation.
	if node, err := s.selectNode(newPodInfo(fooPod("p5", "500", 5))); err != nil || node != "a" {
		t.Errorf("selectNode(p5) = %q, %v; want a", node, err)
	}
	c.removePod("uid-p5")
	if node, err := s.selectNode(newPodInfo(p4)); err != nil || node != "a" {
		t.Fatalf("selectNode(p4) = %q, %v; want a", node, err)
	}
	if got := c.nominatedNode(p4.UID); got != "" {
		t.Errorf("p4 still nominated to %q once assumed onto a node", got)
	}
}

func TestMayPreempt(t *testing.T) {
	c := newTestCache([]*corev1.Node{testNode("a", "4", "8Gi", 110, offering(foo, "1"))}, []*corev1.Pod{
		fooPod("low", "1", 1, onNode("a")),
	})
	s := &selector{cache: c}
	if c.mayPreempt(newPodInfo(fooPod("p", "1", 10, never))) {
		t.Errorf("mayPreempt = true for preemptionPolicy Never")
	}
	p := newPodInfo(fooPod("p", "1", 10))
	if !c.mayPreempt(p) {
		t.Fatalf("mayPreempt = false before any preemption")
	}
	if node, _ := s.preempt(p); node != "a" {
		t.Fatalf("preempt = %q, want a", node)
	}
	// The victim is being deleted: wait for it rather than preempt more.
	c.setPod(fooPod("low", "1", 1, onNode("a"), terminating))
	if c.mayPreempt(p) {
		t.Errorf("mayPreempt = true while the victim terminates on the nominated node")
	}
}

func TestPreemptionEvictsAndBinds(t *testing.T) {
	c := newTestCluster(t, Options{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	ctx := testContext(t)
	for name, value := range map[string]int32{"low": 1, "high": 1000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
		if _, err := c.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create PriorityClass %s: %v", name, err)
		}
	}
	classed := func(name string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.PriorityClassName = name }
	}
	c.createNode(t, ctx, testNode("a", "4", "8Gi", 110, offering(foo, "1")))
	c.createPod(t, ctx, testPod("victim", "", "", requestingScalar(foo, "1"), classed("low"), func(p *corev1.Pod) {
		p.Finalizers = []string{"example.com/hold"}
	}))
	victim := c.waitPod(t, ctx, "victim", "bound", bound)

	c.createPod(t, ctx, testPod("preemptor", "", "", requestingScalar(foo, "1"), classed("high")))
	victim = c.waitPod(t, ctx, "victim", "terminating", func(p *corev1.Pod) bool { return p.DeletionTimestamp != nil })
	var disrupted bool
	for _, cond := range victim.Status.Conditions {
		disrupted = disrupted || cond.Type == corev1.DisruptionTarget && cond.Status == corev1.ConditionTrue &&
			cond.Reason == corev1.PodReasonPreemptionByScheduler && cond.Message == preemptionMessage
	}
	if !disrupted {
		t.Errorf("victim conditions = %+v, want DisruptionTarget=True reason PreemptionByScheduler", victim.Status.Conditions)
	}
	preemptor := c.waitPod(t, ctx, "preemptor", "nominated", func(p *corev1.Pod) bool { return p.Status.NominatedNodeName != "" })
	if preemptor.Status.NominatedNodeName != "a" || preemptor.Spec.NodeName != "" {
		t.Errorf("preemptor nominated to %q, bound to %q; want nominated to a while the victim terminates",
			preemptor.Status.NominatedNodeName, preemptor.Spec.NodeName)
	}
	c.waitEvent(t, ctx, "victim", "Preempted", fmt.Sprintf("Preempted by pod %s on node a", preemptor.UID))

	// The victim goes (as a node would confirm its end) once its
	// finalizer is removed; the room is the preemptor's.
	victim = victim.DeepCopy()
	victim.Finalizers = nil
	if _, err := c.client.CoreV1().Pods("default").Update(ctx, victim, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("remove the victim's finalizer: %v", err)
	}
	if err := c.client.CoreV1().Pods("default").Delete(ctx, "victim", *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatalf("delete the victim: %v", err)
	}
	if pod := c.waitPod(t, ctx, "preemptor", "bound", bound); pod.Spec.NodeName != "a" {
		t.Errorf("preemptor bound to %q, want a", pod.Spec.NodeName)
	}
}

// BenchmarkPreempt measures one preemption attempt in a cluster of 1,000
// full nodes with 10 pods of lower priority each: every node is
// simulated, which is the cost a pending high-priority pod pays per
// attempt.
//
//	go test -run '^$' -bench Preempt ./server/scheduler
func BenchmarkPreempt(b *testing.B) {
	c := fullBenchCache()
	s := &selector{cache: c}
	p := newPodInfo(testPod("p", "2", "1Gi", withPriority(100)))
	for b.Loop() {
		node, victims := s.preempt(p)
		if node == "" || len(victims) != 2 {
			b.Fatalf("preempt = %q with %d victims, want a node and 2", node, len(victims))
		}
		c.unnominate(p.pod.UID)
	}
}

// BenchmarkPreemptNoVictims is BenchmarkPreempt for a pod whose priority
// no pod is below (the default 0 everywhere): the attempt every pending
// pod makes when it fits nowhere.
func BenchmarkPreemptNoVictims(b *testing.B) {
	s := &selector{cache: fullBenchCache()}
	p := newPodInfo(testPod("p", "2", "1Gi"))
	for b.Loop() {
		if node, _ := s.preempt(p); node != "" {
			b.Fatalf("preempt = %q, want none", node)
		}
	}
}

// fullBenchCache holds 1,000 nodes of 10 cpu, each full with 10 pods of
// 1 cpu at priorities 0 to 9.
func fullBenchCache() *cache {
	var nodes []*corev1.Node
	var pods []*corev1.Pod
	for i := range 1000 {
		name := fmt.Sprintf("n%d", i)
		nodes = append(nodes, testNode(name, "10", "64Gi", 110))
		for j := range 10 {
			pods = append(pods, testPod(fmt.Sprintf("%s-%d", name, j), "1", "1Gi", onNode(name), withPriority(int32(j))))
		}
	}
	return newTestCache(nodes, pods)
}

func withLabel(key, value string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[key] = value
	}
}

// testBudget is a PodDisruptionBudget in "default" selecting key=value
// that allows that many disruptions.
func testBudget(name, key, value string, allowed int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
}

// budgetLister lists pdbs as the scheduler's informer would.
func budgetLister(t *testing.T, pdbs []*policyv1.PodDisruptionBudget) policylisters.PodDisruptionBudgetLister {
	idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	for _, pdb := range pdbs {
		if err := idx.Add(pdb); err != nil {
			t.Fatal(err)
		}
	}
	return policylisters.NewPodDisruptionBudgetLister(idx)
}
