package nodes

import (
	"context"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
)

// Heartbeat records that the calling node is alive, and writes its Ready
// condition if its readiness changed.
func (s *Service) Heartbeat(ctx context.Context, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	node, err := callerNode(ctx)
	if err != nil {
		return nil, err
	}
	want := corev1.ConditionFalse
	if req.GetReady() {
		want = corev1.ConditionTrue
	}
	if err := s.beats.beat(ctx, node, want, req.GetMessage()); err != nil {
		return nil, grpcError(err)
	}
	return &api.HeartbeatResponse{}, nil
}

// heartbeats is the in-memory table of when each node was last heard
// from, and the readiness last written to its Node. Only changes of
// readiness reach the store.
type heartbeats struct {
	svc *Service

	mu    sync.Mutex       // guards nodes and ctx
	nodes map[string]*beat // by node name
	ctx   context.Context  // run's; nil when run is not running
	bg    sync.WaitGroup   // background verifications, waited for by run
}

type beat struct {
	last  time.Time
	ready corev1.ConditionStatus // as last written or read; "" = not known
	// heard is the last heartbeat the node sent to this server (zero:
	// none); other servers learn of it through Config.Peers.
	heard time.Time
	// checked is when a heartbeat last compared ready with the Node.
	checked time.Time
	// write orders the writes of the node's Ready condition: a heartbeat
	// that arrives while the node is being marked silent writes Ready
	// after that write, not before it. Taken before heartbeats.mu.
	write sync.Mutex
}

func newHeartbeats(s *Service) *heartbeats {
	return &heartbeats{svc: s, nodes: map[string]*beat{}}
}

func (h *heartbeats) last(node string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.nodes[node]
	if !ok {
		return time.Time{}, false
	}
	return b.last, true
}

// local returns the nodes that sent heartbeats to this server, with the
// time of the last one.
func (h *heartbeats) local() map[string]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]time.Time{}
	for name, b := range h.nodes {
		if !b.heard.IsZero() {
			out[name] = b.heard
		}
	}
	return out
}

func (h *heartbeats) forget(node string) {
	h.mu.Lock()
	delete(h.nodes, node)
	h.mu.Unlock()
}

// setReady records that ready was written to node's Node.
func (h *heartbeats) setReady(node string, ready corev1.ConditionStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.nodes[node]
	if !ok {
		b = &beat{}
		h.nodes[node] = b
	}
	b.last, b.ready = h.svc.cfg.Now(), ready
}

// beat records a heartbeat and writes the Ready condition when it differs
// from want. A node without a Node object yet is only recorded: its report
// will create the Node.
func (h *heartbeats) beat(ctx context.Context, node string, want corev1.ConditionStatus, msg string) error {
	h.mu.Lock()
	b, ok := h.nodes[node]
	if !ok {
		b = &beat{}
		h.nodes[node] = b
	}
	// The first heartbeat a server hears from a node, and one every grace
	// period after, compares ready with the Node: with several servers
	// the leader may have marked the node Unknown (it came from a server
	// that went away, or its heartbeats did not reach the leader) while
	// this server's table still says Ready.
	now := h.svc.cfg.Now()
	check := b.checked.IsZero() || now.Sub(b.checked) >= h.svc.cfg.GracePeriod
	b.last, b.heard = now, now
	if check {
		b.checked = now
	}
	known := b.ready
	h.mu.Unlock()
	if known == want {
		if check {
			// In the background: a slow API must not delay heartbeats.
			h.verify(node, want, msg)
		}
		return nil
	}
	b.write.Lock()
	defer b.write.Unlock()
	h.mu.Lock()
	known = b.ready // a write that ran meanwhile may have changed it
	h.mu.Unlock()
	if known == want {
		return nil
	}
	written, err := h.svc.setReady(ctx, node, want, readyReason(want), msg, known == "" || check)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	if b2, ok := h.nodes[node]; ok {
		b2.ready = written
	}
	h.mu.Unlock()
	return nil
}

// verifyTimeout bounds a background comparison of a node's readiness.
const verifyTimeout = 10 * time.Second

// verify writes want to node's Node, in the background, if the Node says
// otherwise. It does nothing before run has started.
func (h *heartbeats) verify(node string, want corev1.ConditionStatus, msg string) {
	h.mu.Lock()
	base := h.ctx
	if base == nil {
		h.mu.Unlock()
		return
	}
	h.bg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.bg.Done()
		ctx, cancel := context.WithTimeout(base, verifyTimeout)
		defer cancel()
		written, err := h.svc.setReady(ctx, node, want, readyReason(want), msg, true)
		if err != nil {
			if !apierrors.IsNotFound(err) && base.Err() == nil {
				h.svc.lg.Debug("comparing node readiness", "node", node, "err", err)
			}
			return
		}
		h.mu.Lock()
		if b, ok := h.nodes[node]; ok {
			b.ready = written
		}
		h.mu.Unlock()
	}()
}

// run marks nodes silent for the grace period Ready=Unknown until ctx
// ends. At its start every existing Node counts as just heard from.
func (h *heartbeats) run(ctx context.Context) {
	h.mu.Lock()
	h.ctx = ctx
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.ctx = nil
		h.mu.Unlock()
		h.bg.Wait()
	}()
	h.seed(ctx)
	period := min(max(h.svc.cfg.GracePeriod/4, 10*time.Millisecond), 5*time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if h.svc.cfg.Leading != nil && !h.svc.cfg.Leading() {
				continue
			}
			for _, node := range h.silent() {
				h.markSilent(ctx, node)
			}
		}
	}
}

// markSilent writes Ready=Unknown to the Node of a node that has been
// silent for the grace period, unless it was heard from meanwhile.
func (h *heartbeats) markSilent(ctx context.Context, node string) {
	h.mu.Lock()
	b, ok := h.nodes[node]
	h.mu.Unlock()
	if !ok {
		return
	}
	b.write.Lock()
	defer b.write.Unlock()
	h.mu.Lock()
	if h.svc.cfg.Now().Sub(b.last) <= h.svc.cfg.GracePeriod || b.ready == corev1.ConditionUnknown {
		h.mu.Unlock()
		return
	}
	// Recorded before the write: a heartbeat during it then sees that
	// Ready must be written again, and waits for this write to end.
	b.ready = corev1.ConditionUnknown
	h.mu.Unlock()
	_, err := h.svc.setReady(ctx, node, corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", false)
	if err != nil && !apierrors.IsNotFound(err) {
		h.svc.lg.Warn("marking silent node", "node", node, "err", err)
		h.mu.Lock()
		b.ready = "" // unknown: the next heartbeat compares with the Node
		h.mu.Unlock()
		return
	}
	h.svc.lg.Info("node stopped sending heartbeats", "node", node)
}

// seed puts every existing Node in the table.
func (h *heartbeats) seed(ctx context.Context) {
	list, err := h.svc.client(ServiceUser).Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		if ctx.Err() == nil {
			h.svc.lg.Warn("listing nodes", "err", err)
		}
		return
	}
	now := h.svc.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range list.Items {
		n := &list.Items[i]
		if _, ok := h.nodes[n.Name]; ok {
			continue
		}
		h.nodes[n.Name] = &beat{last: now, ready: readyStatus(n)}
	}
}

// silent returns the nodes past the grace period not yet marked Unknown.
func (h *heartbeats) silent() []string {
	now := h.svc.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name, b := range h.nodes {
		if now.Sub(b.last) > h.svc.cfg.GracePeriod && b.ready != corev1.ConditionUnknown {
			out = append(out, name)
		}
	}
	if h.svc.cfg.Peers == nil {
		return out
	}
	// A node connected to another server is heard there.
	return slices.DeleteFunc(out, func(name string) bool {
		t, ok := h.svc.cfg.Peers.LastHeartbeat(name)
		return ok && now.Sub(t) <= h.svc.cfg.GracePeriod
	})
}

func readyReason(s corev1.ConditionStatus) string {
	if s == corev1.ConditionTrue {
		return "KubeletReady"
	}
	return "KubeletNotReady"
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// setReady writes node's Ready condition unless it already has status
// want (onlyIfDifferent is for a first heartbeat after a server start, when
// the table does not know what the Node says). It returns the status the
// Node now has.
func (s *Service) setReady(ctx context.Context, node string, want corev1.ConditionStatus, reason, msg string, onlyIfDifferent bool) (corev1.ConditionStatus, error) {
	nodes := s.client(ServiceUser).Nodes()
	for try := 0; ; try++ {
		n, err := nodes.Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if onlyIfDifferent && readyStatus(n) == want {
			return want, nil
		}
		setCondition(&n.Status, corev1.NodeCondition{
			Type: corev1.NodeReady, Status: want, Reason: reason, Message: msg,
		}, s.cfg.Now())
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && try < 5 {
			continue
		}
		if err != nil {
			return "", err
		}
		s.lg.Info("node readiness changed", "node", node, "ready", want, "reason", reason)
		return want, nil
	}
}

// setCondition puts c into st, keeping the transition time when the
// status does not change, and the heartbeat time when c is Unknown (the
// server writes that for a node it has not heard from).
func setCondition(st *corev1.NodeStatus, c corev1.NodeCondition, now time.Time) {
	t := metav1.NewTime(now.Truncate(time.Second))
	c.LastHeartbeatTime, c.LastTransitionTime = t, t
	for i := range st.Conditions {
		if st.Conditions[i].Type != c.Type {
			continue
		}
		if st.Conditions[i].Status == c.Status {
			c.LastTransitionTime = st.Conditions[i].LastTransitionTime
		}
		if c.Status == corev1.ConditionUnknown {
			c.LastHeartbeatTime = st.Conditions[i].LastHeartbeatTime
		}
		st.Conditions[i] = c
		return
	}
	st.Conditions = append(st.Conditions, c)
}
