package scheduler

import (
	"cmp"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// Preemption: a pod that fits on no node may make room by evicting pods of
// lower priority. For every node the scheduler simulates removing all the
// node's pods of lower priority; if the pod then fits, it puts them back
// one by one, most important first, and those that no longer fit with the
// pod are the node's victims. Pods whose eviction would exceed what their
// PodDisruptionBudget allows are put back before the others, so they are
// evicted only when nothing else makes room. Among the nodes with victims
// it picks, in order, the one with the fewest budget violations, whose
// most important victim has the lowest priority, the lowest sum of victim
// priorities, the fewest victims, and the most recently started most
// important victim, as kube-scheduler does.
//
// The preemptor is nominated to the node (status.nominatedNodeName) and
// waits for the victims to go: while nominated, its requests count on
// the node for pods of lower or equal priority, so they do not take the
// room it made.

// nominatedPod is a pending pod nominated to a node.
type nominatedPod struct {
	info *podInfo
	node string
}

// nominateLocked records that p waits for room on node; c.mu must be held.
func (c *cache) nominateLocked(p *podInfo, node string) {
	c.unnominateLocked(p.pod.UID)
	c.nominated[p.pod.UID] = &nominatedPod{info: p, node: node}
	n := c.nodeLocked(node)
	n.nominated = append(n.nominated, p)
}

// nominate records a nomination the API reports, unless the pod's
// nomination is already known.
func (c *cache) nominate(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if np := c.nominated[pod.UID]; np != nil && np.node == pod.Status.NominatedNodeName {
		return
	}
	c.nominateLocked(newPodInfo(pod), pod.Status.NominatedNodeName)
}

// unnominate forgets a pod's nomination, and reports whether it had one.
func (c *cache) unnominate(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unnominateLocked(uid)
}

// c.mu must be held.
func (c *cache) unnominateLocked(uid types.UID) bool {
	np := c.nominated[uid]
	if np == nil {
		return false
	}
	delete(c.nominated, uid)
	if n := c.nodes[np.node]; n != nil {
		n.nominated = slices.DeleteFunc(n.nominated, func(q *podInfo) bool { return q.pod.UID == uid })
		c.dropIfUnusedLocked(n)
	}
	return true
}

// nominatedNode returns the node a pod is nominated to, "" if none.
func (c *cache) nominatedNode(uid types.UID) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if np := c.nominated[uid]; np != nil {
		return np.node
	}
	return ""
}

// reserves reports whether nominated pod q holds room on its node against
// pod p: it does against pods of lower or equal priority.
func reserves(q, p *podInfo) bool {
	return q.pod.UID != p.pod.UID && q.priority >= p.priority
}

// checkNominated is check with the requests of the pods nominated to n
// that reserve room against p counted on n.
func checkNominated(p *podInfo, n *nodeInfo, out []string) []string {
	if len(n.nominated) == 0 {
		return check(p, n, out)
	}
	for _, q := range n.nominated {
		if reserves(q, p) {
			n.addPod(q)
		}
	}
	out = check(p, n, out)
	for _, q := range n.nominated {
		if reserves(q, p) {
			n.removePod(q)
		}
	}
	return out
}

// mayPreempt reports whether p may evict other pods now: not if its
// preemptionPolicy is Never, nor while lower-priority pods are still
// terminating on the node it is nominated to (it waits for the room it
// already made).
func (c *cache) mayPreempt(p *podInfo) bool {
	if pol := p.pod.Spec.PreemptionPolicy; pol != nil && *pol == corev1.PreemptNever {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	np := c.nominated[p.pod.UID]
	if np == nil {
		return true
	}
	n := c.nodes[np.node]
	if n == nil {
		return true
	}
	for _, q := range n.pods {
		if q.pod.DeletionTimestamp != nil && q.priority < p.priority {
			return false
		}
	}
	return true
}

// candidate is a node where evicting victims lets a pod fit.
type candidate struct {
	node       *nodeInfo
	victims    []*podInfo // most important first
	violations int        // victims evicted beyond their budget
}

// budget is a PodDisruptionBudget as preemption reads it.
type budget struct {
	pdb      *policyv1.PodDisruptionBudget
	selector labels.Selector
}

// listBudgets returns the PodDisruptionBudgets that select pods (an empty
// selector selects none for preemption, as upstream).
func (s *selector) listBudgets() []budget {
	if s.budgets == nil {
		return nil
	}
	pdbs, err := s.budgets.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []budget
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		out = append(out, budget{pdb: pdb, selector: sel})
	}
	return out
}

// splitByBudget splits pods (most important first) into those whose
// eviction, counted in that order, would take some budget below zero
// and the others.
func splitByBudget(pods []*podInfo, budgets []budget) (violating, others []*podInfo) {
	if len(budgets) == 0 {
		return nil, pods
	}
	allowed := make([]int32, len(budgets))
	for i, b := range budgets {
		allowed[i] = b.pdb.Status.DisruptionsAllowed
	}
	for _, q := range pods {
		breaks := false
		for i, b := range budgets {
			if b.pdb.Namespace != q.pod.Namespace || !b.selector.Matches(labels.Set(q.pod.Labels)) {
				continue
			}
			if _, done := b.pdb.Status.DisruptedPods[q.pod.Name]; done {
				continue // already counted by the budget
			}
			if allowed[i]--; allowed[i] < 0 {
				breaks = true
			}
		}
		if breaks {
			violating = append(violating, q)
		} else {
			others = append(others, q)
		}
	}
	return violating, others
}

// preempt finds the node where evicting pods of lower priority lets p fit
// and the fewest, least important such pods, and nominates p to it. It
// returns the node's name and the victims to evict, or "" when evicting
// pods makes room nowhere.
func (s *selector) preempt(p *podInfo) (string, []*corev1.Pod) {
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !anyBelow(c.priorities, p.priority) {
		return "", nil
	}
	nodes := c.list
	if p.nodeNames != nil {
		nodes = nil
		for _, name := range p.nodeNames {
			if n := c.nodes[name]; n != nil && n.index >= 0 {
				nodes = append(nodes, n)
			}
		}
	}
	budgets := s.listBudgets()
	var best *candidate
	for _, n := range nodes {
		cand := s.victimsLocked(p, n, budgets)
		if cand != nil && (best == nil || better(cand, best)) {
			best = cand
		}
	}
	if best == nil {
		return "", nil
	}
	c.nominateLocked(p, best.node.name)
	pods := make([]*corev1.Pod, len(best.victims))
	for i, v := range best.victims {
		pods[i] = v.pod
	}
	return best.node.name, pods
}

// victimsLocked returns n as a candidate with the fewest pods of lower
// priority whose eviction lets p fit, or nil when p can't fit even
// without all of them. n is left as it was. s.cache.mu must be held.
func (s *selector) victimsLocked(p *podInfo, n *nodeInfo, budgets []budget) *candidate {
	if !anyBelow(n.priorities, p.priority) {
		return nil
	}
	var lower []*podInfo
	for _, q := range n.pods {
		if q.priority < p.priority && q.pod.DeletionTimestamp == nil {
			lower = append(lower, q)
		}
	}
	if len(lower) == 0 {
		return nil
	}
	for _, q := range lower {
		n.removePod(q)
	}
	if s.reasons = checkNominated(p, n, s.reasons); len(s.reasons) > 0 {
		for _, q := range lower {
			n.addPod(q)
		}
		return nil
	}
	slices.SortFunc(lower, moreImportant)
	violating, others := splitByBudget(lower, budgets)
	cand := &candidate{node: n}
	// reprieve puts q back if p still fits, and reports whether it did.
	reprieve := func(q *podInfo) bool {
		n.addPod(q)
		if s.reasons = checkNominated(p, n, s.reasons); len(s.reasons) > 0 {
			n.removePod(q)
			cand.victims = append(cand.victims, q)
			return false
		}
		return true
	}
	for _, q := range violating {
		if !reprieve(q) {
			cand.violations++
		}
	}
	for _, q := range others {
		reprieve(q)
	}
	for _, v := range cand.victims {
		n.addPod(v)
	}
	slices.SortFunc(cand.victims, moreImportant)
	return cand
}

// anyBelow reports whether counts (pods per priority) has pods of
// priority below p.
func anyBelow(counts map[int32]int, p int32) bool {
	for prio := range counts {
		if prio < p {
			return true
		}
	}
	return false
}

// moreImportant orders pods by decreasing priority, then by start time
// (creation time before they start), earliest first.
func moreImportant(a, b *podInfo) int {
	if c := cmp.Compare(b.priority, a.priority); c != 0 {
		return c
	}
	return cmp.Compare(startTime(a), startTime(b))
}

func startTime(p *podInfo) int64 {
	if t := p.pod.Status.StartTime; t != nil {
		return t.UnixNano()
	}
	return p.pod.CreationTimestamp.UnixNano()
}

// better reports whether evicting a's victims is preferable to evicting
// b's.
func better(a, b *candidate) bool {
	if c := cmp.Compare(a.violations, b.violations); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(a.victims[0].priority, b.victims[0].priority); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(prioritySum(a.victims), prioritySum(b.victims)); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(len(a.victims), len(b.victims)); c != 0 {
		return c < 0
	}
	return startTime(a.victims[0]) > startTime(b.victims[0])
}

// prioritySum adds up the victims' priorities, each shifted to be
// positive so that more victims never sum to less.
func prioritySum(victims []*podInfo) int64 {
	var sum int64
	for _, v := range victims {
		sum += int64(v.priority) + math.MaxInt32 + 1
	}
	return sum
}
