package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func testNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/hostname": "node-1"}},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.1.0/24", PodCIDRs: []string{"10.42.1.0/24"}},
		Status: corev1.NodeStatus{
			Capacity:   corev1.ResourceList{"cpu": resource.MustParse("2"), "pods": resource.MustParse("110")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.35.0-minik", OSImage: "Debian GNU/Linux 13 (trixie)",
				KernelVersion: "6.12.0", ContainerRuntimeVersion: "containerd://1.6.20"},
		},
	}
}

func validNode() *corev1.Node {
	n := testNode()
	nodeResource.PrepareForCreate(n)
	return n
}

func TestNodePrepareForCreateKeepsStatus(t *testing.T) {
	node := validNode()
	want := testNode().Status
	want.Allocatable = want.Capacity.DeepCopy()
	if diff := cmp.Diff(want, node.Status, quantityEqual); diff != "" {
		t.Errorf("status after create (-want +got):\n%s", diff)
	}
	if node.Generation != 1 {
		t.Errorf("generation = %d, want 1", node.Generation)
	}
}

func TestValidateNode(t *testing.T) {
	runValidation(t, nodeResource, validNode, []validationCase[*corev1.Node]{
		{name: "valid"},
		{"cluster-scoped", func(n *corev1.Node) { n.Namespace = "default" }, []string{errKey(forbidden, "metadata.namespace")}},
		{"name a DNS subdomain", func(n *corev1.Node) { n.Name = "Node_1" }, []string{errKey(invalid, "metadata.name")}},
		{"podCIDR a CIDR", func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.42.1.0", nil }, []string{errKey(invalid, "spec.podCIDR")}},
		{"podCIDRs match podCIDR", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.2.0/24"} }, []string{errKey(invalid, "spec.podCIDRs[0]")}},
		{"at most two podCIDRs", func(n *corev1.Node) { n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, "fd00:1::/64", "10.42.9.0/24") },
			[]string{errKey(tooMany, "spec.podCIDRs")}},
		{"taint", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "gpu", Value: "a100", Effect: "NoSchedule"}}
		}, nil},
		{"taint key required", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Effect: "NoSchedule"}} },
			[]string{errKey(required, "spec.taints[0].key")}},
		{"taint key qualified", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "a b", Effect: "NoSchedule"}} },
			[]string{errKey(invalid, "spec.taints[0].key")}},
		{"taint effect required", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "gpu"}} },
			[]string{errKey(required, "spec.taints[0].effect")}},
		{"taint effect supported", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "gpu", Effect: "Never"}} },
			[]string{errKey(notSupported, "spec.taints[0].effect")}},
		{"taints unique by key and effect", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "gpu", Effect: "NoSchedule"}, {Key: "gpu", Value: "x", Effect: "NoSchedule"}}
		}, []string{errKey(duplicate, "spec.taints[1]")}},
		{"capacity not negative", func(n *corev1.Node) { n.Status.Capacity["cpu"] = resource.MustParse("-1") },
			[]string{errKey(invalid, "status.capacity[cpu]")}},
		{"address type required", func(n *corev1.Node) { n.Status.Addresses[0].Type = "" },
			[]string{errKey(required, "status.addresses[0].type")}},
	})
}

func TestNodeUpdate(t *testing.T) {
	base := func() *corev1.Node { return stored(nodeResource, testNode()) }
	runUpdate(t, nodeResource, false, base, []validationCase[*corev1.Node]{
		{"cordon", func(n *corev1.Node) { n.Spec.Unschedulable = true }, nil},
		{"status ignored", func(n *corev1.Node) { n.Status.Capacity["cpu"] = resource.MustParse("-1") }, nil},
		{"podCIDR immutable", func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.42.2.0/24", []string{"10.42.2.0/24"} },
			[]string{errKey(forbidden, "spec.podCIDRs")}},
		{"providerID set once", func(n *corev1.Node) { n.Spec.ProviderID = "minik://node-1" }, nil},
	})
	unallocated := func() *corev1.Node {
		n := base()
		n.Spec.PodCIDR, n.Spec.PodCIDRs, n.Spec.ProviderID = "", nil, "minik://node-1"
		return n
	}
	runUpdate(t, nodeResource, false, unallocated, []validationCase[*corev1.Node]{
		{"podCIDR allocated", func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.42.2.0/24", []string{"10.42.2.0/24"} }, nil},
		{"providerID immutable", func(n *corev1.Node) { n.Spec.ProviderID = "other://x" }, []string{errKey(forbidden, "spec.providerID")}},
	})
	runUpdate(t, nodeResource, true, base, []validationCase[*corev1.Node]{
		{"heartbeat", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }, nil},
		{"spec ignored", func(n *corev1.Node) { n.Spec.PodCIDR = "bad" }, nil},
		{"allocatable not negative", func(n *corev1.Node) { n.Status.Allocatable = corev1.ResourceList{"memory": resource.MustParse("-1")} },
			[]string{errKey(invalid, "status.allocatable[memory]")}},
	})
}

func TestNodeFieldSet(t *testing.T) {
	node := validNode()
	node.Spec.Unschedulable = true
	want := fields.Set{"metadata.name": "node-1", "metadata.namespace": "", "spec.unschedulable": "true"}
	if diff := cmp.Diff(want, nodeResource.FieldSet(node)); diff != "" {
		t.Errorf("FieldSet (-want +got):\n%s", diff)
	}
}

func TestNodeRow(t *testing.T) {
	node := testNode()
	node.CreationTimestamp = ago(10 * 24 * time.Hour)
	node.Labels["node-role.kubernetes.io/control-plane"] = "true"
	node.Labels["node-role.kubernetes.io/master"] = "true"
	node.Labels["kubernetes.io/role"] = "master"
	node.Status.Addresses = append(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.7"})
	want := []interface{}{"node-1", "Ready", "control-plane,master", "10d", "v1.35.0-minik",
		"192.168.1.10", "203.0.113.7", "Debian GNU/Linux 13 (trixie)", "6.12.0", "containerd://1.6.20"}
	if diff := cmp.Diff(want, nodeRow(node, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	bare := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2", CreationTimestamp: ago(time.Minute)}}
	want = []interface{}{"node-2", "Unknown", "<none>", "60s", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}
	if diff := cmp.Diff(want, nodeRow(bare, testNow)); diff != "" {
		t.Errorf("row of a new node (-want +got):\n%s", diff)
	}
}

func TestNodeStatusColumn(t *testing.T) {
	tests := []struct {
		name          string
		conditions    []corev1.NodeCondition
		unschedulable bool
		want          string
	}{
		{"ready", []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}, false, "Ready"},
		{"not ready", []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}, false, "NotReady"},
		{"unknown readiness", []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}, false, "NotReady"},
		{"no ready condition", []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}}, false, "Unknown"},
		{"cordoned", []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}, true, "Ready,SchedulingDisabled"},
	}
	for _, tc := range tests {
		node := &corev1.Node{Spec: corev1.NodeSpec{Unschedulable: tc.unschedulable}, Status: corev1.NodeStatus{Conditions: tc.conditions}}
		if got := nodeStatus(node); got != tc.want {
			t.Errorf("%s: nodeStatus = %q, want %q", tc.name, got, tc.want)
		}
	}
}
