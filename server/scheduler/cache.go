package scheduler

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cachedPod is a pod counted on a node.
type cachedPod struct {
	info    *podInfo
	node    string
	assumed bool // bound (or being bound) by this scheduler, not yet seen so by the informer
}

// cache holds every node with the pods assigned to it: the ones the
// informer reports and the ones this scheduler has assumed onto a node
// before the informer reports their binding.
type cache struct {
	mu    sync.Mutex
	nodes map[string]*nodeInfo     // guarded by mu; includes nodes only pods refer to
	list  []*nodeInfo              // guarded by mu; nodes with a Node object, in no order
	pods  map[types.UID]*cachedPod // guarded by mu
	// nominated are pending pods waiting for room they made by
	// preemption; guarded by mu.
	nominated map[types.UID]*nominatedPod
	// priorities counts the pods on nodes per priority, so that
	// preemption finds out cheaply that no pod has a lower one; guarded
	// by mu.
	priorities map[int32]int
}

func newCache() *cache {
	return &cache{
		nodes: map[string]*nodeInfo{}, pods: map[types.UID]*cachedPod{},
		nominated: map[types.UID]*nominatedPod{}, priorities: map[int32]int{},
	}
}

// setNode adds or refreshes a node.
func (c *cache) setNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(node.Name)
	n.setNode(node)
	if n.index < 0 {
		n.index = len(c.list)
		c.list = append(c.list, n)
	}
}

// removeNode forgets a node; pods still assigned to it keep counting
// there until they are gone.
func (c *cache) removeNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil || n.index < 0 {
		return
	}
	last := c.list[len(c.list)-1]
	c.list[n.index], last.index = last, n.index
	c.list = c.list[:len(c.list)-1]
	n.index, n.node = -1, nil
	c.dropIfUnusedLocked(n)
}

// nodeLocked returns the named node, creating a placeholder if needed.
// c.mu must be held.
func (c *cache) nodeLocked(name string) *nodeInfo {
	n := c.nodes[name]
	if n == nil {
		n = newNodeInfo(name)
		c.nodes[name] = n
	}
	return n
}

// c.mu must be held.
func (c *cache) dropIfUnusedLocked(n *nodeInfo) {
	if n.index < 0 && n.used.pods == 0 && len(n.nominated) == 0 {
		delete(c.nodes, n.name)
	}
}

// setPod records an assigned pod the informer reports; a terminated pod
// stops counting.
func (c *cache) setPod(pod *corev1.Pod) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		c.removePod(pod.UID)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp := c.pods[pod.UID]; cp != nil && cp.node == pod.Spec.NodeName {
		// Requests don't change once a pod is on a node: only confirm
		// it, and keep its latest version (preemption looks at its
		// deletion). The info is replaced, not changed, as a binder
		// may be reading it.
		info := *cp.info
		info.pod = pod
		cp.info, cp.assumed = &info, false
		if n := c.nodes[cp.node]; n != nil {
			n.pods[pod.UID] = &info
		}
		return
	}
	c.removePodLocked(pod.UID)
	c.unnominateLocked(pod.UID)
	c.addPodLocked(newPodInfo(pod), pod.Spec.NodeName, false)
}

// removePod stops counting a pod, assumed or not.
func (c *cache) removePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePodLocked(uid)
}

// assume counts p on node before its binding is known; c.mu must be held.
func (c *cache) assumeLocked(p *podInfo, node string) {
	c.removePodLocked(p.pod.UID)
	c.unnominateLocked(p.pod.UID)
	c.addPodLocked(p, node, true)
}

// forget undoes assume after a failed binding. A pod the informer has
// meanwhile reported assigned stays counted.
func (c *cache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp := c.pods[uid]; cp != nil && cp.assumed {
		c.removePodLocked(uid)
	}
}

// isAssumed reports whether the pod is assumed onto a node.
func (c *cache) isAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := c.pods[uid]
	return cp != nil && cp.assumed
}

// c.mu must be held.
func (c *cache) addPodLocked(p *podInfo, node string, assumed bool) {
	c.pods[p.pod.UID] = &cachedPod{info: p, node: node, assumed: assumed}
	n := c.nodeLocked(node)
	n.addPod(p)
	n.pods[p.pod.UID] = p
	n.priorities[p.priority]++
	c.priorities[p.priority]++
}

// c.mu must be held.
func (c *cache) removePodLocked(uid types.UID) {
	cp := c.pods[uid]
	if cp == nil {
		return
	}
	delete(c.pods, uid)
	decrementCount(c.priorities, cp.info.priority)
	if n := c.nodes[cp.node]; n != nil {
		n.removePod(cp.info)
		delete(n.pods, uid)
		decrementCount(n.priorities, cp.info.priority)
		c.dropIfUnusedLocked(n)
	}
}

func decrementCount(m map[int32]int, k int32) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// nodeCount is the number of nodes with a Node object.
func (c *cache) nodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}
