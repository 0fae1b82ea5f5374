package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Explanations of why a node can't run a pod, worded as kube-scheduler's so
// that messages read the same to Kubernetes users.
const (
	reasonNotReady      = "node(s) were not ready"
	reasonUnschedulable = "node(s) were unschedulable"
	reasonAffinity      = "node(s) didn't match Pod's node affinity/selector"
	reasonPorts         = "node(s) didn't have free ports for the requested pod ports"
	reasonCPU           = "Insufficient cpu"
	reasonMemory        = "Insufficient memory"
	reasonPods          = "Too many pods"
)

// A filter appends to out the reasons node n can't run pod p and returns
// it; nothing appended means the node passes. Reasons are constants or
// strings precomputed per node, so filters don't allocate.
type filter func(p *podInfo, n *nodeInfo, out []string) []string

// filters run in this order; the first that fails a node explains it.
var filters = []filter{filterReady, filterUnschedulable, filterTaints, filterAffinity, filterPorts, filterResources}

// check runs the filters on one node, reusing out's storage, and returns
// the reasons of the first filter that fails (none if the node fits).
func check(p *podInfo, n *nodeInfo, out []string) []string {
	out = out[:0]
	for _, f := range filters {
		if out = f(p, n, out); len(out) > 0 {
			return out
		}
	}
	return out
}

// filterReady keeps pods off nodes that are not Ready, unless the pod
// tolerates the taint that stands for the node's state (as DaemonSet-like
// pods do); the taints themselves are checked by filterTaints.
func filterReady(p *podInfo, n *nodeInfo, out []string) []string {
	if !n.ready && (n.readyTaint == nil || !tolerated(p.tolerations, n.readyTaint)) {
		return append(out, reasonNotReady)
	}
	return out
}

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

func filterUnschedulable(p *podInfo, n *nodeInfo, out []string) []string {
	if n.unschedulable && !tolerated(p.tolerations, &unschedulableTaint) {
		return append(out, reasonUnschedulable)
	}
	return out
}

func filterTaints(p *podInfo, n *nodeInfo, out []string) []string {
	for i := range n.taints {
		if !tolerated(p.tolerations, &n.taints[i].taint) {
			return append(out, n.taints[i].reason)
		}
	}
	return out
}

func tolerated(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tols {
		if tolerates(&tols[i], taint) {
			return true
		}
	}
	return false
}

// tolerates reports whether t tolerates taint: an empty effect matches all
// effects, an empty key with Exists matches all keys.
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case corev1.TolerationOpExists:
		return true
	case "", corev1.TolerationOpEqual:
		return t.Key != "" && t.Value == taint.Value
	}
	return false
}

func filterAffinity(p *podInfo, n *nodeInfo, out []string) []string {
	if p.affinity == nil {
		return out
	}
	if ok, err := p.affinity.Match(n.node); !ok || err != nil {
		return append(out, reasonAffinity)
	}
	return out
}

func filterPorts(p *podInfo, n *nodeInfo, out []string) []string {
	if len(p.ports) == 0 || len(n.ports) == 0 {
		return out
	}
	for _, hp := range p.ports {
		if portTaken(n, hp) {
			return append(out, reasonPorts)
		}
	}
	return out
}

// portTaken reports whether hp conflicts with a port claimed on n: same
// protocol and port, and the same address or either on every address.
func portTaken(n *nodeInfo, hp hostPort) bool {
	if hp.ip == wildcardIP {
		return n.portsAnyIP[hostPort{protocol: hp.protocol, port: hp.port}] > 0
	}
	if n.ports[hp] > 0 {
		return true
	}
	return n.ports[hostPort{ip: wildcardIP, protocol: hp.protocol, port: hp.port}] > 0
}

// filterResources checks each requested resource; a resource the pod
// doesn't request always fits.
func filterResources(p *podInfo, n *nodeInfo, out []string) []string {
	if n.used.pods+1 > n.alloc.pods {
		out = append(out, reasonPods)
	}
	if p.req.milliCPU > 0 && n.used.milliCPU+p.req.milliCPU > n.alloc.milliCPU {
		out = append(out, reasonCPU)
	}
	if p.req.memory > 0 && n.used.memory+p.req.memory > n.alloc.memory {
		out = append(out, reasonMemory)
	}
	for _, r := range p.scalars {
		if n.scalarUsed[r.name]+r.amount > n.scalarAlloc[r.name] {
			out = append(out, r.reason)
		}
	}
	return out
}

// fitError says why a pod fits on none of the nodes.
type fitError struct {
	nodes   int
	reasons map[string]int // explanation → number of nodes it applies to
}

// Error reads "0/N nodes are available: " and then the explanations with
// their node counts, most frequent first (ties alphabetical).
func (e *fitError) Error() string {
	if e.nodes == 0 {
		return "0/0 nodes are available: no nodes available to schedule pods"
	}
	keys := make([]string, 0, len(e.reasons))
	for r := range e.reasons {
		keys = append(keys, r)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(e.reasons[b], e.reasons[a]), strings.Compare(a, b))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available: ", e.nodes)
	for i, r := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", e.reasons[r], r)
	}
	return b.String()
}

// explainLocked runs the filters on every node for a pod that fits none.
// c.mu must be held.
func (c *cache) explainLocked(p *podInfo) *fitError {
	e := &fitError{nodes: len(c.list), reasons: map[string]int{}}
	var buf []string
	for _, n := range c.list {
		buf = checkNominated(p, n, buf)
		for _, r := range buf {
			e.reasons[r]++
		}
	}
	return e
}
