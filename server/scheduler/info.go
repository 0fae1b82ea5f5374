package scheduler

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Requests of containers that ask for nothing still count when scoring, so
// that many such pods spread out (as kube-scheduler's non-zero defaults).
const (
	defaultScoreMilliCPU = 100
	defaultScoreMemory   = 200 << 20
)

// resources is an amount of the resources the scheduler accounts for.
type resources struct {
	milliCPU int64
	memory   int64
	pods     int64
}

func (r *resources) add(o resources) {
	r.milliCPU += o.milliCPU
	r.memory += o.memory
	r.pods += o.pods
}

func (r *resources) sub(o resources) {
	r.milliCPU -= o.milliCPU
	r.memory -= o.memory
	r.pods -= o.pods
}

// hostPort is a port a pod claims on its node's addresses.
type hostPort struct {
	ip       string // "0.0.0.0" for every address
	protocol corev1.Protocol
	port     int32
}

const wildcardIP = "0.0.0.0"

// scalarRequest is a request of a resource other than cpu, memory and
// pods (an extended resource such as example.com/gpu, or hugepages).
type scalarRequest struct {
	name   corev1.ResourceName
	amount int64
	reason string // "Insufficient NAME", formatted once
}

// scalarResource reports whether the scheduler counts name as a scalar
// resource: anything but cpu, memory, pods and ephemeral storage, which
// nodes don't report.
func scalarResource(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage:
		return false
	}
	return true
}

// podInfo is what the scheduler precomputes of a pod once per attempt.
type podInfo struct {
	pod      *corev1.Pod
	priority int32     // spec.priority, 0 if unset
	req      resources // requests, pods = 1
	scalars  []scalarRequest
	scoreReq resources // requests with non-zero defaults, for scoring
	ports    []hostPort
	owner    types.UID // controller ownerReference, "" if none
	affinity *nodeaffinity.RequiredNodeAffinity
	// nodeNames, when not nil, are the only nodes the required node
	// affinity can match (it pins metadata.name): the scheduler looks
	// them up instead of scanning every node.
	nodeNames   []string
	tolerations []corev1.Toleration
}

func newPodInfo(pod *corev1.Pod) *podInfo {
	p := &podInfo{pod: pod, tolerations: pod.Spec.Tolerations, ports: podHostPorts(pod)}
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	p.req = resources{milliCPU: reqs.Cpu().MilliValue(), memory: reqs.Memory().Value(), pods: 1}
	for name, q := range reqs {
		if scalarResource(name) && !q.IsZero() {
			p.scalars = append(p.scalars, scalarRequest{name: name, amount: q.Value(), reason: "Insufficient " + string(name)})
		}
	}
	slices.SortFunc(p.scalars, func(a, b scalarRequest) int { return strings.Compare(string(a.name), string(b.name)) })
	if pod.Spec.Priority != nil {
		p.priority = *pod.Spec.Priority
	}
	p.scoreReq = p.req
	if p.scoreReq.milliCPU == 0 {
		p.scoreReq.milliCPU = defaultScoreMilliCPU
	}
	if p.scoreReq.memory == 0 {
		p.scoreReq.memory = defaultScoreMemory
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		p.owner = ref.UID
	}
	if hasRequiredAffinity(pod) {
		a := nodeaffinity.GetRequiredNodeAffinity(pod)
		p.affinity = &a
		p.nodeNames = pinnedNodeNames(pod)
	}
	return p
}

// pinnedNodeNames returns the names of the only nodes pod's required node
// affinity can match, or nil when it can match others: every term (the
// terms are ORed) must require metadata.name In some names (a term's
// requirements are ANDed, so a term with several keeps the names all of
// them allow). The returned names are sorted and distinct.
func pinnedNodeNames(pod *corev1.Pod) []string {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return nil
	}
	names := []string{}
	for i := range terms {
		term, pinned := termNodeNames(&terms[i])
		if !pinned {
			return nil
		}
		names = append(names, term...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// termNodeNames returns the node names a term's metadata.name In
// requirements allow, and whether it has any.
func termNodeNames(term *corev1.NodeSelectorTerm) ([]string, bool) {
	var names []string
	pinned := false
	for _, r := range term.MatchFields {
		if r.Key != metav1.ObjectNameField || r.Operator != corev1.NodeSelectorOpIn {
			continue
		}
		if !pinned {
			names, pinned = slices.Clone(r.Values), true
			continue
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(r.Values, n) })
	}
	return names, pinned
}

func hasRequiredAffinity(pod *corev1.Pod) bool {
	if len(pod.Spec.NodeSelector) > 0 {
		return true
	}
	a := pod.Spec.Affinity
	return a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
}

func podHostPorts(pod *corev1.Pod) []hostPort {
	var ports []hostPort
	for i := range pod.Spec.Containers {
		for _, cp := range pod.Spec.Containers[i].Ports {
			if cp.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: cp.HostIP, protocol: cp.Protocol, port: cp.HostPort}
			if hp.ip == "" || hp.ip == "::" {
				hp.ip = wildcardIP
			}
			if hp.protocol == "" {
				hp.protocol = corev1.ProtocolTCP
			}
			ports = append(ports, hp)
		}
	}
	return ports
}

// taintInfo is a taint that keeps pods off a node, with its explanation
// formatted once.
type taintInfo struct {
	taint  corev1.Taint
	reason string
}

// nodeInfo is a node with the requests of the pods assigned to it,
// precomputed so that checking a pod against it is cheap.
type nodeInfo struct {
	name          string
	node          *corev1.Node // nil while only pods refer to the node
	ready         bool
	readyTaint    *corev1.Taint // the lifecycle taint standing for !ready
	unschedulable bool
	alloc         resources
	used          resources                     // sum of requests of the pods on the node
	scalarAlloc   map[corev1.ResourceName]int64 // nil when the node offers none
	scalarUsed    map[corev1.ResourceName]int64 // nil until a pod requests one
	scoreUsed     resources                     // same with non-zero defaults
	taints        []taintInfo
	ports         map[hostPort]int       // claimed host ports, with counts
	portsAnyIP    map[hostPort]int       // same keyed with ip "", for wildcard checks
	owners        map[types.UID]int32    // pods on the node per controller
	pods          map[types.UID]*podInfo // the pods counted in used
	priorities    map[int32]int          // the number of those pods per priority
	nominated     []*podInfo             // pending pods nominated to the node
	index         int                    // position in cache.list, -1 if absent
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{name: name, owners: map[types.UID]int32{}, pods: map[types.UID]*podInfo{}, priorities: map[int32]int{}, index: -1}
}

// setNode refreshes what is derived from the Node object.
func (n *nodeInfo) setNode(node *corev1.Node) {
	n.node = node
	n.ready = nodeReady(node)
	n.readyTaint = conditionTaint(node)
	n.unschedulable = node.Spec.Unschedulable
	a := node.Status.Allocatable
	n.alloc = resources{milliCPU: a.Cpu().MilliValue(), memory: a.Memory().Value(), pods: a.Pods().Value()}
	n.scalarAlloc = nil
	for name, q := range a {
		if scalarResource(name) {
			if n.scalarAlloc == nil {
				n.scalarAlloc = map[corev1.ResourceName]int64{}
			}
			n.scalarAlloc[name] = q.Value()
		}
	}
	n.taints = n.taints[:0]
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			n.taints = append(n.taints, taintInfo{taint: t, reason: "node(s) had untolerated taint {" + t.Key + ": " + t.Value + "}"})
		}
	}
}

var (
	notReadyTaint    = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	unreachableTaint = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
)

// conditionTaint is the taint the node lifecycle puts on a node in its
// Ready state (not-ready for False, unreachable for Unknown or none): a pod
// that tolerates it may go to the node before the taint is written.
func conditionTaint(node *corev1.Node) *corev1.Taint {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionFalse {
			return &notReadyTaint
		}
	}
	return &unreachableTaint
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// addPod counts p's requests, ports and owner on n; removePod undoes it.
// Preemption uses both to simulate evictions, so they leave n.pods alone.
func (n *nodeInfo) addPod(p *podInfo) {
	n.used.add(p.req)
	n.scoreUsed.add(p.scoreReq)
	for _, r := range p.scalars {
		if n.scalarUsed == nil {
			n.scalarUsed = map[corev1.ResourceName]int64{}
		}
		n.scalarUsed[r.name] += r.amount
	}
	if p.owner != "" {
		n.owners[p.owner]++
	}
	for _, hp := range p.ports {
		if n.ports == nil {
			n.ports, n.portsAnyIP = map[hostPort]int{}, map[hostPort]int{}
		}
		n.ports[hp]++
		n.portsAnyIP[hostPort{protocol: hp.protocol, port: hp.port}]++
	}
}

func (n *nodeInfo) removePod(p *podInfo) {
	n.used.sub(p.req)
	n.scoreUsed.sub(p.scoreReq)
	for _, r := range p.scalars {
		if n.scalarUsed[r.name] -= r.amount; n.scalarUsed[r.name] <= 0 {
			delete(n.scalarUsed, r.name)
		}
	}
	if p.owner != "" {
		if n.owners[p.owner]--; n.owners[p.owner] <= 0 {
			delete(n.owners, p.owner)
		}
	}
	for _, hp := range p.ports {
		decrement(n.ports, hp)
		decrement(n.portsAnyIP, hostPort{protocol: hp.protocol, port: hp.port})
	}
}

func decrement(m map[hostPort]int, k hostPort) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}
