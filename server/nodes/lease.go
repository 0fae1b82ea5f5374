package nodes

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Node leases as the kubelet keeps them: one Lease per node in
// NodeLeaseNamespace, named as the node, held by it, lasting
// NodeLeaseDurationSeconds. Agents do not write them: they already send
// heartbeats, which the service keeps in memory, and the leader renews
// each live node's Lease from those, with the time of the node's last
// heartbeat as renewTime. A kubelet renews every 10 s; the leader renews
// every DefaultNodeLeaseRenewInterval, half as many writes, which still
// keeps the renewTime of a live node younger than the lease's duration:
// at most the interval, plus a heartbeat interval (10 s), plus a round of
// renewals (1 s), 31 s of 40.
const (
	// NodeLeaseNamespace holds the node leases.
	NodeLeaseNamespace = "kube-node-lease"
	// NodeLeaseDurationSeconds is the leaseDurationSeconds of a node
	// lease, the kubelet's.
	NodeLeaseDurationSeconds = 40
	// DefaultNodeLeaseRenewInterval is how often a live node's lease is
	// renewed.
	DefaultNodeLeaseRenewInterval = 20 * time.Second
	// leaseWriters bounds the lease writes in flight, so that a round of
	// many nodes shares commits without flooding the store.
	leaseWriters = 16
)

// nodeLeases renews the leases of live nodes. Its state is owned by run
// and guarded by mu for the writers run starts.
type nodeLeases struct {
	svc    *Service
	leases coordinationclient.LeaseInterface

	mu      sync.Mutex                       // guards written
	written map[string]*coordinationv1.Lease // by node: the lease as last written
}

func newNodeLeases(s *Service) *nodeLeases {
	c, err := coordinationclient.NewForConfig(s.cfg.API.LoopbackConfig(ServiceUser))
	if err != nil {
		// Only a malformed Host makes NewForConfig fail.
		panic(err)
	}
	return &nodeLeases{svc: s, leases: c.Leases(NodeLeaseNamespace), written: map[string]*coordinationv1.Lease{}}
}

// run renews due leases while this server leads, until ctx ends.
func (l *nodeLeases) run(ctx context.Context) {
	period := min(max(l.svc.cfg.NodeLeaseRenewInterval/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if l.svc.cfg.Leading != nil && !l.svc.cfg.Leading() {
				continue
			}
			l.renewDue(ctx)
		}
	}
}

// renewDue renews, in parallel, the lease of every node heard from within
// the lease duration whose lease was last renewed an interval ago or more
// and that has sent a heartbeat since.
func (l *nodeLeases) renewDue(ctx context.Context) {
	now := l.svc.cfg.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(leaseWriters)
	for node, heard := range l.svc.beats.heard() {
		if now.Sub(heard) > NodeLeaseDurationSeconds*time.Second || !l.due(node, heard, now) {
			continue
		}
		g.Go(func() error {
			if err := l.renew(gctx, node, heard); err != nil && ctx.Err() == nil {
				l.svc.lg.Debug("renewing node lease", "node", node, "err", err)
			}
			return nil
		})
	}
	g.Wait()
}

func (l *nodeLeases) due(node string, heard, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.written[node]
	if w == nil || w.Spec.RenewTime == nil {
		return true
	}
	renewed := w.Spec.RenewTime.Time
	return heard.After(renewed) && now.Sub(renewed) >= l.svc.cfg.NodeLeaseRenewInterval
}

// renew writes node's lease with renewTime heard: an update of the lease
// as last written, else of the lease read back, else a creation.
func (l *nodeLeases) renew(ctx context.Context, node string, heard time.Time) error {
	l.mu.Lock()
	cur := l.written[node]
	l.mu.Unlock()
	if cur == nil {
		got, err := l.leases.Get(ctx, node, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return l.create(ctx, node, heard)
		case err != nil:
			return err
		}
		cur = got
	}
	next := cur.DeepCopy()
	fillNodeLease(next, node, heard)
	out, err := l.leases.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		// Changed or deleted by someone else: read it again next round.
		l.remember(node, nil)
		return err
	}
	l.remember(node, out)
	return nil
}

// create makes node's lease, owned by its Node so that it goes with it. A
// node without a Node yet gets its lease once it has one.
func (l *nodeLeases) create(ctx context.Context, node string, heard time.Time) error {
	n, err := l.svc.client(ServiceUser).Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: node, Namespace: NodeLeaseNamespace,
		OwnerReferences: []metav1.OwnerReference{nodeOwner(node, n.UID)},
	}}
	fillNodeLease(lease, node, heard)
	out, err := l.leases.Create(ctx, lease, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	l.remember(node, out)
	return nil
}

func (l *nodeLeases) remember(node string, lease *coordinationv1.Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lease == nil {
		delete(l.written, node)
		return
	}
	l.written[node] = lease
}

// fillNodeLease sets what the kubelet sets in its lease.
func fillNodeLease(lease *coordinationv1.Lease, node string, renew time.Time) {
	holder, duration := node, int32(NodeLeaseDurationSeconds)
	lease.Spec.HolderIdentity = &holder
	lease.Spec.LeaseDurationSeconds = &duration
	lease.Spec.RenewTime = &metav1.MicroTime{Time: renew}
}

func nodeOwner(node string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: node, UID: uid}
}

// heard returns, for every node of the table, its last heartbeat to this
// server or to a peer; nodes never heard from (only seen in the store
// since the server started) are left out.
func (h *heartbeats) heard() map[string]time.Time {
	h.mu.Lock()
	out := make(map[string]time.Time, len(h.nodes))
	for name, b := range h.nodes {
		out[name] = b.heard
	}
	h.mu.Unlock()
	for name, t := range out {
		if h.svc.cfg.Peers != nil {
			if pt, ok := h.svc.cfg.Peers.LastHeartbeat(name); ok && pt.After(t) {
				t = pt
				out[name] = t
			}
		}
		if t.IsZero() {
			delete(out, name)
		}
	}
	return out
}
