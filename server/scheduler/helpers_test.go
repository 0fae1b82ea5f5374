package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// testNode returns a Ready node with the given allocatable cpu, memory and
// pod count; opts adjust it.
func testNode(name, cpu, mem string, pods int, opts ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse(mem),
				corev1.ResourcePods:   *resource.NewQuantity(int64(pods), resource.DecimalSI),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	n.Status.Capacity = n.Status.Allocatable.DeepCopy()
	for _, o := range opts {
		o(n)
	}
	return n
}

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }

func unknown(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

func tainted(key, value string, effect corev1.TaintEffect) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

// offering makes the node offer amount of an extended resource.
func offering(name corev1.ResourceName, amount string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Status.Allocatable[name] = resource.MustParse(amount)
		n.Status.Capacity[name] = resource.MustParse(amount)
	}
}

func labelled(key, value string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Labels[key] = value }
}

// testPod returns a pending pod in "default" with one container
// requesting cpu and memory ("" requests nothing); opts adjust it.
func testPod(name, cpu, mem string, opts ...func(*corev1.Pod)) *corev1.Pod {
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: req},
		}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// requestingScalar makes the pod's container request amount of an
// extended resource (with the equal limit extended resources require).
func requestingScalar(name corev1.ResourceName, amount string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		res := &p.Spec.Containers[0].Resources
		res.Requests[name] = resource.MustParse(amount)
		if res.Limits == nil {
			res.Limits = corev1.ResourceList{}
		}
		res.Limits[name] = resource.MustParse(amount)
	}
}

// withPriority sets the pod's spec.priority, as the Priority admission does.
func withPriority(v int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Priority = &v }
}

func onNode(node string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.NodeName = node }
}

func hostPortOn(ip string, port int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports,
			corev1.ContainerPort{ContainerPort: 80, HostPort: port, HostIP: ip})
	}
}

func tolerating(t corev1.Toleration) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
}

func selecting(key, value string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		p.Spec.NodeSelector[key] = value
	}
}

func requiring(terms ...corev1.NodeSelectorTerm) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}

func ownedBy(uid string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		ctrl := true
		p.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ReplicationController", Name: "rc", UID: types.UID(uid), Controller: &ctrl,
		}}
	}
}

// newTestCache returns a cache holding nodes and the assigned pods.
func newTestCache(nodes []*corev1.Node, pods []*corev1.Pod) *cache {
	c := newCache()
	for _, n := range nodes {
		c.setNode(n)
	}
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			panic(fmt.Sprintf("pod %s is not assigned", p.Name))
		}
		c.setPod(p)
	}
	return c
}
