package scheduler

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFilterExplanations(t *testing.T) {
	big := func(name string, opts ...func(*corev1.Node)) *corev1.Node {
		return testNode(name, "4", "8Gi", 110, opts...)
	}
	small := testNode("small", "500m", "8Gi", 110)
	tests := []struct {
		name     string
		nodes    []*corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     []string // nodes the pod may land on; nil when it fits nowhere
		msg      string
	}{
		{
			name: "fits", nodes: []*corev1.Node{big("a")},
			pod: testPod("p", "1", "1Gi"), want: []string{"a"},
		},
		{
			name: "no nodes", pod: testPod("p", "", ""),
			msg: "0/0 nodes are available: no nodes available to schedule pods",
		},
		{
			name:  "not ready and cordoned",
			nodes: []*corev1.Node{big("a", notReady), big("b", cordoned), big("c", cordoned), big("d")},
			pod:   testPod("p", "", ""), want: []string{"d"},
		},
		{
			name:  "not ready and cordoned, nothing left",
			nodes: []*corev1.Node{big("a", notReady), big("b", cordoned), big("c", cordoned)},
			pod:   testPod("p", "", ""),
			msg:   "0/3 nodes are available: 2 node(s) were unschedulable, 1 node(s) were not ready",
		},
		{
			name:  "not ready, the not-ready taint tolerated",
			nodes: []*corev1.Node{big("a", notReady), big("b", unknown)},
			pod:   testPod("p", "", "", tolerating(corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists})),
			want:  []string{"a"},
		},
		{
			name:  "unknown, the unreachable taint tolerated",
			nodes: []*corev1.Node{big("a", notReady), big("b", unknown)},
			pod: testPod("p", "", "", tolerating(corev1.Toleration{
				Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})),
			want: []string{"b"},
		},
		{
			name:  "cordon tolerated",
			nodes: []*corev1.Node{big("a", cordoned)},
			pod: testPod("p", "", "", tolerating(corev1.Toleration{
				Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})),
			want: []string{"a"},
		},
		{
			name:  "insufficient cpu and taint",
			nodes: []*corev1.Node{small, testNode("small2", "500m", "8Gi", 110), big("t", tainted("key", "value", corev1.TaintEffectNoSchedule))},
			pod:   testPod("p", "1", "1Gi"),
			msg:   "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {key: value}",
		},
		{
			name:  "cpu and memory on one node",
			nodes: []*corev1.Node{testNode("a", "1", "1Gi", 110)},
			pod:   testPod("p", "2", "2Gi"),
			msg:   "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory",
		},
		{
			name:     "extended resource offered by one node",
			nodes:    []*corev1.Node{big("a"), big("b", offering("example.com/foo", "3")), big("c", offering("example.com/foo", "1"))},
			existing: []*corev1.Pod{testPod("x", "", "", onNode("b"), requestingScalar("example.com/foo", "1"))},
			pod:      testPod("p", "", "", requestingScalar("example.com/foo", "2")),
			want:     []string{"b"},
		},
		{
			name:     "extended resource used up",
			nodes:    []*corev1.Node{big("a"), big("b", offering("example.com/foo", "3"))},
			existing: []*corev1.Pod{testPod("x", "", "", onNode("b"), requestingScalar("example.com/foo", "2"))},
			pod:      testPod("p", "", "", requestingScalar("example.com/foo", "2")),
			msg:      "0/2 nodes are available: 2 Insufficient example.com/foo",
		},
		{
			name:     "requests of pods on the node count",
			nodes:    []*corev1.Node{testNode("a", "2", "4Gi", 110), testNode("b", "2", "4Gi", 110)},
			existing: []*corev1.Pod{testPod("x", "1500m", "", onNode("a")), testPod("y", "", "3Gi", onNode("b"))},
			pod:      testPod("p", "1", "2Gi"),
			msg:      "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory",
		},
		{
			name:     "terminated pods don't count",
			nodes:    []*corev1.Node{testNode("a", "2", "4Gi", 110)},
			existing: []*corev1.Pod{testPod("x", "2", "", onNode("a"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
			pod:      testPod("p", "1", ""), want: []string{"a"},
		},
		{
			name:     "too many pods",
			nodes:    []*corev1.Node{testNode("a", "4", "4Gi", 1)},
			existing: []*corev1.Pod{testPod("x", "", "", onNode("a"))},
			pod:      testPod("p", "", ""),
			msg:      "0/1 nodes are available: 1 Too many pods",
		},
		{
			name:  "NoExecute taint, PreferNoSchedule ignored",
			nodes: []*corev1.Node{big("a", tainted("gpu", "", corev1.TaintEffectNoExecute)), big("b", tainted("soft", "x", corev1.TaintEffectPreferNoSchedule))},
			pod:   testPod("p", "", ""), want: []string{"b"},
		},
		{
			name:  "taint tolerated by Equal",
			nodes: []*corev1.Node{big("a", tainted("key", "value", corev1.TaintEffectNoSchedule))},
			pod:   testPod("p", "", "", tolerating(corev1.Toleration{Key: "key", Value: "value", Effect: corev1.TaintEffectNoSchedule})),
			want:  []string{"a"},
		},
		{
			name: "node lifecycle taints like any other",
			nodes: []*corev1.Node{
				big("not-ready", tainted(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoSchedule)),
				big("not-ready-noexecute", tainted(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoExecute)),
				big("unreachable", tainted(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoSchedule)),
			},
			pod: testPod("p", "", ""),
			msg: "0/3 nodes are available: 2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
		},
		{
			name: "not-ready taints tolerated",
			nodes: []*corev1.Node{
				big("not-ready", tainted(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoSchedule), tainted(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoExecute)),
				big("unreachable", tainted(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoSchedule)),
			},
			pod:  testPod("p", "", "", tolerating(corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists})),
			want: []string{"not-ready"},
		},
		{
			name:  "toleration of another value",
			nodes: []*corev1.Node{big("a", tainted("key", "value", corev1.TaintEffectNoSchedule))},
			pod:   testPod("p", "", "", tolerating(corev1.Toleration{Key: "key", Value: "other"})),
			msg:   "0/1 nodes are available: 1 node(s) had untolerated taint {key: value}",
		},
		{
			name:  "node selector",
			nodes: []*corev1.Node{big("a", labelled("disk", "ssd")), big("b"), big("c")},
			pod:   testPod("p", "", "", selecting("disk", "hdd")),
			msg:   "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector",
		},
		{
			name:  "node selector match",
			nodes: []*corev1.Node{big("a", labelled("disk", "ssd")), big("b")},
			pod:   testPod("p", "", "", selecting("disk", "ssd")), want: []string{"a"},
		},
		{
			name:  "affinity In and NotIn",
			nodes: []*corev1.Node{big("a", labelled("zone", "1")), big("b", labelled("zone", "2")), big("c", labelled("zone", "3"))},
			pod: testPod("p", "", "", requiring(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"1", "2"}},
				{Key: "zone", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"1"}},
			}})),
			want: []string{"b"},
		},
		{
			name:  "affinity Exists, DoesNotExist, Gt, Lt",
			nodes: []*corev1.Node{big("a", labelled("cores", "8")), big("b", labelled("cores", "2")), big("c", labelled("cores", "16"), labelled("old", ""))},
			pod: testPod("p", "", "", requiring(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: "cores", Operator: corev1.NodeSelectorOpExists},
				{Key: "old", Operator: corev1.NodeSelectorOpDoesNotExist},
				{Key: "cores", Operator: corev1.NodeSelectorOpGt, Values: []string{"4"}},
				{Key: "cores", Operator: corev1.NodeSelectorOpLt, Values: []string{"32"}},
			}})),
			want: []string{"a"},
		},
		{
			name:  "affinity terms are ORed, matchFields by name",
			nodes: []*corev1.Node{big("a"), big("b"), big("c", labelled("zone", "x"))},
			pod: testPod("p", "", "", requiring(
				corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"x"}}}},
			)),
			want: []string{"b", "c"},
		},
		{
			name:     "host port taken",
			nodes:    []*corev1.Node{big("a"), big("b")},
			existing: []*corev1.Pod{testPod("x", "", "", onNode("a"), hostPortOn("", 8080)), testPod("y", "", "", onNode("b"), hostPortOn("10.0.0.2", 8080))},
			pod:      testPod("p", "", "", hostPortOn("", 8080)),
			msg:      "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports",
		},
		{
			name:     "host port on other address or protocol",
			nodes:    []*corev1.Node{big("a")},
			existing: []*corev1.Pod{testPod("x", "", "", onNode("a"), hostPortOn("10.0.0.1", 8080)), testPod("y", "", "", onNode("a"), hostPortOn("", 9090))},
			pod: testPod("p", "", "", hostPortOn("10.0.0.2", 8080), func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{HostPort: 9090, Protocol: corev1.ProtocolUDP})
			}),
			want: []string{"a"},
		},
		{
			name:     "specific host port against wildcard",
			nodes:    []*corev1.Node{big("a")},
			existing: []*corev1.Pod{testPod("x", "", "", onNode("a"), hostPortOn("0.0.0.0", 8080))},
			pod:      testPod("p", "", "", hostPortOn("10.0.0.2", 8080)),
			msg:      "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel := &selector{cache: newTestCache(tc.nodes, tc.existing)}
			node, err := sel.selectNode(newPodInfo(tc.pod))
			if tc.want != nil {
				if err != nil || !slices.Contains(tc.want, node) {
					t.Fatalf("selectNode(%s) = %q, %v; want one of %q", tc.pod.Name, node, err, tc.want)
				}
				return
			}
			var fe *fitError
			if !errors.As(err, &fe) {
				t.Fatalf("selectNode(%s) = %q, %v; want a fit error", tc.pod.Name, node, err)
			}
			if got := err.Error(); got != tc.msg {
				t.Errorf("selectNode(%s) error = %q, want %q", tc.pod.Name, got, tc.msg)
			}
		})
	}
}

func TestFitErrorOrder(t *testing.T) {
	e := &fitError{nodes: 12, reasons: map[string]int{reasonCPU: 2, reasonMemory: 2, reasonPods: 10, reasonNotReady: 1}}
	want := "0/12 nodes are available: 10 Too many pods, 2 Insufficient cpu, 2 Insufficient memory, 1 node(s) were not ready"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestFiltersDontAllocate(t *testing.T) {
	n := newTestCache([]*corev1.Node{testNode("a", "4", "8Gi", 110, tainted("k", "v", corev1.TaintEffectNoSchedule))}, nil).list[0]
	p := newPodInfo(testPod("p", "100m", "1Gi", tolerating(corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})))
	buf := make([]string, 0, 4)
	if allocs := testing.AllocsPerRun(100, func() { buf = check(p, n, buf) }); allocs != 0 {
		t.Errorf("check allocates %v times per node, want 0", allocs)
	}
}
