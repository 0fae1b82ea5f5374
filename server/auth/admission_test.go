package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/auth"
)

func testNode(name string, labels map[string]string, spec corev1.NodeSpec) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: spec}
}

func TestAdmitNode(t *testing.T) {
	host := map[string]string{"kubernetes.io/hostname": "n1"}
	cidr := corev1.NodeSpec{PodCIDR: "10.42.1.0/24", PodCIDRs: []string{"10.42.1.0/24"}}
	taint := corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}}
	at := func(sec, nsec int64) corev1.NodeSpec {
		tm := metav1.NewTime(time.Unix(sec, nsec))
		return corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoExecute, TimeAdded: &tm}}}
	}
	tests := []struct {
		name     string
		user     auth.User
		sub      string
		obj, old runtime.Object
		want     string // a word the denial names; "": allowed
	}{
		{"create own", node1, "", testNode("n1", host, corev1.NodeSpec{}), nil, ""},
		{"create another", node1, "", testNode("n2", nil, corev1.NodeSpec{}), nil, `"n2"`},
		{"create with podCIDR", node1, "", testNode("n1", nil, cidr), nil, "spec.podCIDR"},
		{"create with taints", node1, "", testNode("n1", nil, taint), nil, ""},
		{"create with role label", node1, "", testNode("n1", map[string]string{"node-role.kubernetes.io/worker": ""}, corev1.NodeSpec{}), nil, "node-role.kubernetes.io/worker"},
		{"create with restricted subdomain label", node1, "", testNode("n1", map[string]string{"a.node-restriction.kubernetes.io/x": ""}, corev1.NodeSpec{}), nil, "a.node-restriction.kubernetes.io/x"},
		{"create with kubelet namespace label", node1, "", testNode("n1", map[string]string{"kubelet.kubernetes.io/x": "", "beta.kubernetes.io/arch": "amd64"}, corev1.NodeSpec{}), nil, ""},
		{"create with another hostname", node1, "", testNode("n1", map[string]string{"kubernetes.io/hostname": "n2"}, corev1.NodeSpec{}), nil, "kubernetes.io/hostname"},
		{"keep podCIDR", node1, "", testNode("n1", nil, cidr), testNode("n1", nil, cidr), ""},
		{"set podCIDR", node1, "", testNode("n1", nil, cidr), testNode("n1", nil, corev1.NodeSpec{}), "spec.podCIDR"},
		{"add taint", node1, "", testNode("n1", nil, taint), testNode("n1", nil, corev1.NodeSpec{}), "spec.taints"},
		{"remove taint through status", node1, "status", testNode("n1", nil, corev1.NodeSpec{}), testNode("n1", nil, taint), "spec.taints"},
		{"taint time to the second", node1, "", testNode("n1", nil, at(100, 0)), testNode("n1", nil, at(100, 5e8)), ""},
		{"taint time moved", node1, "", testNode("n1", nil, at(101, 0)), testNode("n1", nil, at(100, 0)), "spec.taints"},
		{"remove role label the admin set", node1, "", testNode("n1", nil, corev1.NodeSpec{}), testNode("n1", map[string]string{"node-role.kubernetes.io/x": ""}, corev1.NodeSpec{}), "node-role.kubernetes.io/x"},
		{"keep role label the admin set", node1, "status", testNode("n1", map[string]string{"node-role.kubernetes.io/x": ""}, corev1.NodeSpec{}), testNode("n1", map[string]string{"node-role.kubernetes.io/x": ""}, corev1.NodeSpec{}), ""},
		{"keep hostname the admin set", node1, "", testNode("n1", map[string]string{"kubernetes.io/hostname": "h", "a": "b"}, corev1.NodeSpec{}), testNode("n1", map[string]string{"kubernetes.io/hostname": "h"}, corev1.NodeSpec{}), ""},
		{"master sets anything", master, "", testNode("n2", map[string]string{"node-role.kubernetes.io/x": ""}, cidr), nil, ""},
	}
	var z auth.Authorizer
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := auth.Attributes{Verb: "update", Resource: "nodes", Subresource: tc.sub, Name: "n1"}
			ok, reason := z.Admit(context.Background(), tc.user, a, tc.obj, tc.old)
			if tc.want == "" {
				if !ok {
					t.Errorf("Admit = false %q, want true", reason)
				}
				return
			}
			if ok || !strings.Contains(reason, tc.want) {
				t.Errorf("Admit = %v %q, want false naming %s", ok, reason, tc.want)
			}
		})
	}
}

func TestAdmitPodStatus(t *testing.T) {
	pod := func(node string, change func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "d", Labels: map[string]string{"app": "a"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		if change != nil {
			change(p)
		}
		return p
	}
	tests := []struct {
		name     string
		obj, old *corev1.Pod
		want     string
	}{
		{"status", pod("n1", func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }), pod("n1", nil), ""},
		{"another node's pod", pod("n2", nil), pod("n2", nil), "spec.nodeName"},
		{"labels", pod("n1", func(p *corev1.Pod) { p.Labels["app"] = "b" }), pod("n1", nil), "metadata.labels"},
		{"annotations", pod("n1", func(p *corev1.Pod) { p.Annotations = map[string]string{"x": "y"} }), pod("n1", nil), "metadata.annotations"},
		{"finalizers", pod("n1", func(p *corev1.Pod) { p.Finalizers = []string{"f"} }), pod("n1", nil), "metadata.finalizers"},
		{"owners", pod("n1", func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{{Name: "o"}} }), pod("n1", nil), "metadata.ownerReferences"},
		{"spec", pod("n1", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "j" }), pod("n1", nil), "spec"},
		{"empty labels as none", pod("n1", func(p *corev1.Pod) { p.Labels = map[string]string{} }), pod("n1", func(p *corev1.Pod) { p.Labels = nil }), ""},
	}
	var z auth.Authorizer
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := auth.Attributes{Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "d", Name: "p"}
			ok, reason := z.Admit(context.Background(), node1, a, tc.obj, tc.old)
			if tc.want == "" {
				if !ok {
					t.Errorf("Admit = false %q, want true", reason)
				}
				return
			}
			if ok || !strings.Contains(reason, tc.want) {
				t.Errorf("Admit = %v %q, want false naming %s", ok, reason, tc.want)
			}
		})
	}
}
