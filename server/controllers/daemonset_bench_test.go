package controllers

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// daemonCluster is n nodes, every tenth tainted NoSchedule and every
// other labelled disk=ssd, with one ready pod of ds "agent" on each node
// that should run it.
func daemonCluster(n int) ([]*corev1.Node, []*corev1.Pod) {
	ds := testDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	p := newPlacement(ds)
	tmpl := daemonPodTemplate(ds, "abc")
	var nodes []*corev1.Node
	var pods []*corev1.Pod
	for i := range n {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i), Labels: map[string]string{}}}
		if i%2 == 0 {
			node.Labels["disk"] = "ssd"
		}
		if i%10 == 0 {
			node.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		}
		nodes = append(nodes, node)
		if run, _ := shouldRunOn(p, node); !run {
			continue
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("agent-%d", i), Labels: tmpl.Labels}, Spec: *tmpl.Spec.DeepCopy()}
		pod.Spec.NodeName = node.Name
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		pods = append(pods, pod)
	}
	return nodes, pods
}

// BenchmarkDaemonSetStatus measures one status computation over 5,000
// nodes: placement checks (selector, taints) and pod counts.
func BenchmarkDaemonSetStatus(b *testing.B) {
	nodes, pods := daemonCluster(5000)
	ds := testDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		st, _ := daemonSetStatus(ds, nodes, pods, "abc", now)
		if st.DesiredNumberScheduled != 2000 || st.NumberAvailable != 2000 {
			b.Fatalf("status %+v", st)
		}
	}
}
