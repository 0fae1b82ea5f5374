package nodes

import "sync"

// maxEchoes bounds the revisions kept for one node whose session does not
// consume them (a node reporting with no session open here).
const maxEchoes = 256

// echoes are the revisions at which nodes wrote pod statuses themselves.
// A session does not send such a change back to its node: the node knows
// the status it reported, and the change carries nothing else. It is best
// effort: a change whose revision is recorded only after its batch went
// out is sent as before. Safe for concurrent use.
type echoes struct {
	mu   sync.Mutex
	revs map[string][]int64 // guarded by mu; by node, in the order written
}

func newEchoes() *echoes { return &echoes{revs: map[string][]int64{}} }

// add records that node wrote a pod status at rev.
func (e *echoes) add(node string, rev int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	revs := e.revs[node]
	if len(revs) >= maxEchoes {
		revs = revs[1:]
	}
	e.revs[node] = append(revs, rev)
}

// take reports whether node itself wrote the change at rev, and forgets
// node's revisions up to rev: a session sees changes in revision order,
// so a revision below rev that it has not taken yet never will be.
func (e *echoes) take(node string, rev int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	revs, found := e.revs[node], false
	kept := revs[:0]
	for _, r := range revs {
		switch {
		case r == rev:
			found = true
		case r > rev:
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		delete(e.revs, node)
	} else {
		e.revs[node] = kept
	}
	return found
}
