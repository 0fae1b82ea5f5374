package scheduler

import (
	"math/rand/v2"

	policylisters "k8s.io/client-go/listers/policy/v1"
)

// Score weights: spreading a controller's pods counts twice as much as
// balancing resources, as in kube-scheduler's default profile.
const (
	maxScore     = 100
	spreadWeight = 2
)

// selector picks nodes for pods. It is owned by the scheduling goroutine:
// its buffers are reused from one pod to the next.
type selector struct {
	cache    *cache
	budgets  policylisters.PodDisruptionBudgetLister // nil: preemption ignores budgets
	percent  int                                     // of nodes to find feasible before scoring; 0 = adaptive
	feasible []*nodeInfo
	reasons  []string
	next     int // node to start the next search at, so searches rotate
}

// selectNode finds the best node for p and assumes p onto it. It returns
// the node's name, or a *fitError when no node fits.
func (s *selector) selectNode(p *podInfo) (string, error) {
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	s.findFeasibleLocked(p)
	if len(s.feasible) == 0 {
		return "", c.explainLocked(p)
	}
	best := s.bestLocked(p)
	c.assumeLocked(p, best.name)
	return best.name, nil
}

// findFeasibleLocked fills s.feasible with nodes that pass the filters,
// stopping once it has enough of them in a large cluster. A pod pinned to
// named nodes is checked against those only.
func (s *selector) findFeasibleLocked(p *podInfo) {
	if p.nodeNames != nil {
		s.findNamedLocked(p)
		return
	}
	list := s.cache.list
	want := numToFind(len(list), s.percent)
	s.feasible = s.feasible[:0]
	if len(list) == 0 {
		return
	}
	start := s.next % len(list)
	i := 0
	for ; i < len(list) && len(s.feasible) < want; i++ {
		n := list[(start+i)%len(list)]
		if s.reasons = checkNominated(p, n, s.reasons); len(s.reasons) == 0 {
			s.feasible = append(s.feasible, n)
		}
	}
	s.next = start + i
}

// findNamedLocked fills s.feasible with the nodes among p.nodeNames that
// exist and pass the filters.
func (s *selector) findNamedLocked(p *podInfo) {
	s.feasible = s.feasible[:0]
	for _, name := range p.nodeNames {
		n := s.cache.nodes[name]
		if n == nil || n.index < 0 {
			continue
		}
		if s.reasons = checkNominated(p, n, s.reasons); len(s.reasons) == 0 {
			s.feasible = append(s.feasible, n)
		}
	}
}

// numToFind is how many feasible nodes are enough: all of them in small
// clusters, a share that shrinks with size in large ones (at least 100).
func numToFind(nodes, percent int) int {
	if nodes < 100 || percent >= 100 {
		return nodes
	}
	if percent <= 0 {
		percent = max(5, 50-nodes/125)
	}
	return max(100, nodes*percent/100)
}

// bestLocked returns the feasible node with the highest score, a random
// one among equals.
func (s *selector) bestLocked(p *podInfo) *nodeInfo {
	maxOwned := int32(0)
	if p.owner != "" {
		for _, n := range s.feasible {
			maxOwned = max(maxOwned, n.owners[p.owner])
		}
	}
	var best *nodeInfo
	bestScore, ties := int64(-1), 0
	for _, n := range s.feasible {
		sc := leastAllocated(p, n) + spreadWeight*spread(p, n, maxOwned)
		switch {
		case sc > bestScore:
			best, bestScore, ties = n, sc, 1
		case sc == bestScore:
			ties++
			if rand.IntN(ties) == 0 {
				best = n
			}
		}
	}
	return best
}

// leastAllocated scores a node by the share of its cpu and memory left
// free once p is on it: 0 (full) to maxScore (empty).
func leastAllocated(p *podInfo, n *nodeInfo) int64 {
	cpu := freeShare(n.alloc.milliCPU, n.scoreUsed.milliCPU+p.scoreReq.milliCPU)
	mem := freeShare(n.alloc.memory, n.scoreUsed.memory+p.scoreReq.memory)
	return (cpu + mem) / 2
}

func freeShare(capacity, used int64) int64 {
	if capacity <= 0 || used >= capacity {
		return 0
	}
	return (capacity - used) * maxScore / capacity
}

// spread scores a node by how few pods of p's controller it has compared
// with the feasible node that has most: maxScore for none.
func spread(p *podInfo, n *nodeInfo, maxOwned int32) int64 {
	if p.owner == "" || maxOwned == 0 {
		return maxScore
	}
	return int64(maxOwned-n.owners[p.owner]) * maxScore / int64(maxOwned)
}
