package scheduler

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLeastAllocated(t *testing.T) {
	tests := []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     int64
	}{
		{name: "empty node", pod: testPod("p", "1", "1Gi"), want: 75},
		{name: "half used", existing: []*corev1.Pod{testPod("x", "1", "2Gi", onNode("a"))}, pod: testPod("p", "1", "1Gi"), want: 37},
		{name: "no requests count as defaults", pod: testPod("p", "", ""), want: 96},
		{name: "overcommitted", existing: []*corev1.Pod{testPod("x", "4", "4Gi", onNode("a"))}, pod: testPod("p", "1", "1Gi"), want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache([]*corev1.Node{testNode("a", "4", "4Gi", 110)}, tc.existing)
			if got := leastAllocated(newPodInfo(tc.pod), c.nodes["a"]); got != tc.want {
				t.Errorf("leastAllocated(%s) = %d, want %d", tc.pod.Name, got, tc.want)
			}
		})
	}
}

func TestPrefersLeastAllocatedNode(t *testing.T) {
	nodes := []*corev1.Node{testNode("a", "4", "8Gi", 110), testNode("b", "4", "8Gi", 110), testNode("c", "4", "8Gi", 110)}
	existing := []*corev1.Pod{testPod("x", "2", "2Gi", onNode("a")), testPod("y", "1", "1Gi", onNode("c"))}
	for range 20 {
		sel := &selector{cache: newTestCache(nodes, existing)}
		if got, err := sel.selectNode(newPodInfo(testPod("p", "500m", "512Mi"))); got != "b" || err != nil {
			t.Fatalf("selectNode = %q, %v; want b", got, err)
		}
	}
}

func TestSpreadsPodsOfOneController(t *testing.T) {
	// Node a is four times as large: balancing resources alone would put
	// most pods there.
	nodes := []*corev1.Node{testNode("a", "16", "32Gi", 110), testNode("b", "4", "8Gi", 110), testNode("c", "4", "8Gi", 110)}
	sel := &selector{cache: newTestCache(nodes, nil)}
	perNode := map[string]int{}
	for i := range 9 {
		got, err := sel.selectNode(newPodInfo(testPod(string(rune('a'+i)), "500m", "1Gi", ownedBy("rc-1"))))
		if err != nil {
			t.Fatalf("selectNode: %v", err)
		}
		perNode[got]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if perNode[n] != 3 {
			t.Errorf("pods of one controller per node = %v, want 3 on each", perNode)
			break
		}
	}
}

func TestTiesAreRandom(t *testing.T) {
	nodes := []*corev1.Node{testNode("a", "4", "8Gi", 110), testNode("b", "4", "8Gi", 110)}
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		sel := &selector{cache: newTestCache(nodes, nil)}
		got, _ := sel.selectNode(newPodInfo(testPod("p", "1", "1Gi")))
		seen[got] = true
	}
	if len(seen) != 2 {
		t.Errorf("200 ties between equal nodes went to %v, want both", seen)
	}
}

func TestNumToFind(t *testing.T) {
	tests := []struct{ nodes, percent, want int }{
		{50, 0, 50}, {100, 0, 100}, {1000, 0, 420}, {5000, 0, 500}, {1000, 100, 1000}, {1000, 10, 100}, {1000, 30, 300},
	}
	for _, tc := range tests {
		if got := numToFind(tc.nodes, tc.percent); got != tc.want {
			t.Errorf("numToFind(%d, %d) = %d, want %d", tc.nodes, tc.percent, got, tc.want)
		}
	}
}

func TestAssumedPodsCount(t *testing.T) {
	c := newTestCache([]*corev1.Node{testNode("a", "1", "1Gi", 110)}, nil)
	sel := &selector{cache: c}
	first, second := testPod("first", "600m", ""), testPod("second", "600m", "")
	if got, err := sel.selectNode(newPodInfo(first)); got != "a" || err != nil {
		t.Fatalf("selectNode(first) = %q, %v; want a", got, err)
	}
	if !c.isAssumed(first.UID) {
		t.Fatalf("first is not assumed after selectNode")
	}
	_, err := sel.selectNode(newPodInfo(second))
	var fe *fitError
	if !errors.As(err, &fe) || err.Error() != "0/1 nodes are available: 1 Insufficient cpu" {
		t.Fatalf("selectNode(second) error = %v, want Insufficient cpu", err)
	}
	// The informer reports the binding: still counted once.
	bound := first.DeepCopy()
	bound.Spec.NodeName = "a"
	c.setPod(bound)
	if c.isAssumed(first.UID) || c.nodes["a"].used.milliCPU != 600 {
		t.Fatalf("after confirmation: assumed %v, used %dm; want false, 600m", c.isAssumed(first.UID), c.nodes["a"].used.milliCPU)
	}
	// A failed binding forgets only assumed pods.
	c.forget(first.UID)
	if c.nodes["a"].used.milliCPU != 600 {
		t.Fatalf("forget of a confirmed pod freed its requests")
	}
	c.removePod(first.UID)
	if got, err := sel.selectNode(newPodInfo(second)); got != "a" || err != nil {
		t.Fatalf("selectNode(second) after first deleted = %q, %v; want a", got, err)
	}
}

func TestForgetAssumed(t *testing.T) {
	c := newTestCache([]*corev1.Node{testNode("a", "1", "1Gi", 1)}, nil)
	sel := &selector{cache: c}
	p := testPod("p", "", "")
	if _, err := sel.selectNode(newPodInfo(p)); err != nil {
		t.Fatalf("selectNode: %v", err)
	}
	c.forget(p.UID)
	if c.isAssumed(p.UID) || c.nodes["a"].used.pods != 0 {
		t.Errorf("after forget: assumed %v, pods on node %d; want false, 0", c.isAssumed(p.UID), c.nodes["a"].used.pods)
	}
}

func TestRemovedNodeKeepsPodsUntilGone(t *testing.T) {
	c := newTestCache([]*corev1.Node{testNode("a", "1", "1Gi", 10), testNode("b", "1", "1Gi", 10)}, []*corev1.Pod{testPod("x", "1", "", onNode("a"))})
	c.removeNode("a")
	if len(c.list) != 1 || c.list[0].name != "b" || c.list[0].index != 0 {
		t.Fatalf("list after removing a = %v, want [b]", c.list)
	}
	c.setNode(testNode("a", "1", "1Gi", 10))
	if c.nodes["a"].used.milliCPU != 1000 {
		t.Errorf("re-added node a uses %dm, want its pod's 1000m", c.nodes["a"].used.milliCPU)
	}
	c.removeNode("a")
	c.removePod("uid-x")
	if _, ok := c.nodes["a"]; ok {
		t.Errorf("node a still cached after it and its pods are gone")
	}
}

func byName(names ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: names}
}

func TestPinnedNodeNames(t *testing.T) {
	zoneX := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"x"}}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string
	}{
		{name: "no affinity", pod: testPod("p", "", ""), want: nil},
		{name: "node selector only", pod: testPod("p", "", "", selecting("zone", "x")), want: nil},
		{name: "one name", pod: testPod("p", "", "", requiring(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byName("b")}})), want: []string{"b"}},
		{
			name: "terms are ORed",
			pod: testPod("p", "", "", requiring(
				corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byName("c", "a")}},
				corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byName("a", "b")}},
			)),
			want: []string{"a", "b", "c"},
		},
		{
			name: "requirements of a term are ANDed",
			pod:  testPod("p", "", "", requiring(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byName("a", "b"), byName("b", "c")}})),
			want: []string{"b"},
		},
		{
			name: "labels beside the name narrow no further",
			pod:  testPod("p", "", "", requiring(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneX}, MatchFields: []corev1.NodeSelectorRequirement{byName("a")}})),
			want: []string{"a"},
		},
		{
			name: "a term without a name matches any node",
			pod: testPod("p", "", "", requiring(
				corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byName("a")}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneX}},
			)),
			want: nil,
		},
		{
			name: "NotIn does not pin",
			pod: testPod("p", "", "", requiring(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
				{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"a"}},
			}})),
			want: nil,
		},
		{
			name: "disjoint requirements pin to nothing",
			pod:  testPod("p", "", "", requiring(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byName("a"), byName("b")}})),
			want: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := newPodInfo(tc.pod).nodeNames
			if (got == nil) != (tc.want == nil) || !slices.Equal(got, tc.want) {
				t.Errorf("nodeNames = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// A pod pinned by name is placed only on a named node that passes every
// filter, and one that fits none is explained over all nodes, as before.
func TestPinnedPodOnlyOnNamedNodes(t *testing.T) {
	nodes := []*corev1.Node{
		testNode("a", "4", "8Gi", 110), testNode("b", "1", "8Gi", 110),
		testNode("c", "4", "8Gi", 110, tainted("k", "v", corev1.TaintEffectNoSchedule)), testNode("d", "4", "8Gi", 110),
	}
	existing := []*corev1.Pod{testPod("x", "800m", "", onNode("b"))}
	// One name per term: the API allows a single value for metadata.name.
	pinned := func(names ...string) *corev1.Pod {
		var terms []corev1.NodeSelectorTerm
		for _, n := range names {
			terms = append(terms, corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byName(n)}})
		}
		return testPod("p", "500m", "1Gi", requiring(terms...))
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string // "" for a fit error with msg
		msg  string
	}{
		{name: "named node fits", pod: pinned("d"), want: "d"},
		{name: "one of the named nodes fits", pod: pinned("b", "c", "d"), want: "d"},
		{name: "named node too small", pod: pinned("b"), msg: "0/4 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}"},
		{name: "named nodes too small or tainted", pod: pinned("b", "c"), msg: "0/4 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}"},
		{name: "named node absent", pod: pinned("e"), msg: "0/4 nodes are available: 3 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {k: v}"},
		{name: "named node known only by its pods", pod: pinned("gone"), msg: "0/4 nodes are available: 3 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {k: v}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(nodes, append(slices.Clone(existing), testPod("y", "1", "", onNode("gone"))))
			for range 20 {
				sel := &selector{cache: c}
				got, err := sel.selectNode(newPodInfo(tc.pod))
				if tc.want != "" {
					if got != tc.want || err != nil {
						t.Fatalf("selectNode(%v) = %q, %v; want %q", tc.pod.Spec.Affinity.NodeAffinity, got, err, tc.want)
					}
					c.forget(tc.pod.UID)
					continue
				}
				var fe *fitError
				if !errors.As(err, &fe) || err.Error() != tc.msg {
					t.Fatalf("selectNode = %q, %v; want fit error %q", got, err, tc.msg)
				}
			}
		})
	}
}
