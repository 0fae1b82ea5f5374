package controllers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Heartbeats tells when a node was last heard from. The node service
// implements it; it must be safe for concurrent use.
type Heartbeats interface {
	// LastHeartbeat returns when node last sent a heartbeat; ok is false
	// when the node has not been heard from since the server started.
	LastHeartbeat(node string) (t time.Time, ok bool)
}

// Defaults of NodeLifecycleOptions.
const (
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	DefaultPodEvictionTimeout     = 5 * time.Minute
	DefaultNodeMonitorPeriod      = 5 * time.Second
)

// defaultTolerationSeconds is the unreachable toleration the API server
// gives every pod that has none; such pods are evicted after
// PodEvictionTimeout instead.
const defaultTolerationSeconds = 300

// nodePodsIndex indexes pods by spec.nodeName.
const nodePodsIndex = "nodelifecycle-node"

// NodeLifecycleOptions tunes a NodeLifecycleController.
type NodeLifecycleOptions struct {
	// GracePeriod is how long a node may go without a heartbeat before
	// it is marked Ready=Unknown and tainted unreachable (default 40s).
	GracePeriod time.Duration
	// PodEvictionTimeout is how long the pods of an unreachable node are
	// left before they are deleted (default 5m). A pod whose unreachable
	// toleration has tolerationSeconds other than the default 300 is
	// deleted after that many seconds instead; one whose toleration has
	// no tolerationSeconds stays.
	PodEvictionTimeout time.Duration
	// MonitorPeriod is how often every node is checked (default 5s).
	MonitorPeriod time.Duration
	// Heartbeats reports heartbeats; nil → the lastHeartbeatTime of the
	// Node's Ready condition.
	Heartbeats Heartbeats
	// Recorder records NodeNotReady and eviction events; nil records
	// none.
	Recorder EventRecorder
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// NodeLifecycleController watches node heartbeats and readiness, as the
// upstream node lifecycle controller does with taints. A node silent for
// the grace period gets Ready=Unknown and the node.kubernetes.io/unreachable
// taints (NoExecute and NoSchedule); a node that reports Ready=False gets
// the node.kubernetes.io/not-ready taints instead. As the upstream taint
// eviction controller, it deletes the pods of a node with any NoExecute
// taint once the taint has been there longer than they tolerate it (at
// once for a taint they don't tolerate), after giving them the
// DisruptionTarget condition. When
// the node is heard from and Ready again the taints are removed; the Ready
// condition is the node service's to restore.
type NodeLifecycleController struct {
	client  kubernetes.Interface
	nodes   corelisters.NodeLister
	pods    cache.Indexer
	opts    NodeLifecycleOptions
	rec     EventRecorder
	lg      *slog.Logger
	loop    *loop
	synced  []cache.InformerSynced
	started time.Time
	// seen holds when NoExecute taints without a timeAdded were first
	// seen; guarded by seenMu.
	seenMu sync.Mutex
	seen   map[taintID]time.Time
}

// NewNodeLifecycleController returns a NodeLifecycleController fed by
// the given informers. It must be called before the pod informer starts
// (it adds an index). lg may be nil.
func NewNodeLifecycleController(client kubernetes.Interface, nodes coreinformers.NodeInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts NodeLifecycleOptions) (*NodeLifecycleController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	lg = lg.With("component", "node-lifecycle")
	c := &NodeLifecycleController{
		client: client,
		nodes:  nodes.Lister(),
		pods:   pods.Informer().GetIndexer(),
		opts:   opts,
		rec:    recorderOr(opts.Recorder),
		lg:     lg,
		// started is when the controller was made, a little before
		// Run: nodes count as heard from then.
		started: opts.Now(),
		seen:    map[taintID]time.Time{},
	}
	c.loop = newLoop("nodelifecycle", lg, c.sync)
	err := pods.Informer().AddIndexers(cache.Indexers{nodePodsIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
	if err != nil {
		return nil, err
	}
	reg, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
	})
	if err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{reg.HasSynced, pods.Informer().HasSynced}
	return c, nil
}

func (o NodeLifecycleOptions) withDefaults() NodeLifecycleOptions {
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultNodeMonitorGracePeriod
	}
	if o.PodEvictionTimeout <= 0 {
		o.PodEvictionTimeout = DefaultPodEvictionTimeout
	}
	if o.MonitorPeriod <= 0 {
		o.MonitorPeriod = DefaultNodeMonitorPeriod
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (c *NodeLifecycleController) enqueue(obj any) {
	if key, ok := keyOf(obj); ok {
		c.loop.add(key)
	}
}

// Run checks nodes with workers goroutines until ctx ends, and returns
// after they have stopped.
func (c *NodeLifecycleController) Run(ctx context.Context, workers int) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.tick(ctx) })
	err := c.loop.run(ctx, workers, c.synced...)
	wg.Wait()
	return err
}

// tick enqueues every node each MonitorPeriod: silence has no events.
func (c *NodeLifecycleController) tick(ctx context.Context) {
	t := time.NewTicker(c.opts.MonitorPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			nodes, _ := c.nodes.List(labels.Everything())
			for _, n := range nodes {
				c.loop.add(n.Name)
			}
		}
	}
}

// sync checks one node's heartbeat and acts on it.
func (c *NodeLifecycleController) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	now := c.opts.Now()
	silent := now.Sub(c.lastHeartbeat(node)) > c.opts.GracePeriod
	var key string
	switch cond := readyCondition(node); {
	case silent:
		key = corev1.TaintNodeUnreachable
	case cond != nil && cond.Status == corev1.ConditionFalse:
		key = corev1.TaintNodeNotReady
	}
	node, since, err := c.setTaints(ctx, node, key, now)
	if err != nil {
		return err
	}
	if silent {
		if err := c.markUnknown(ctx, node, now); err != nil {
			return err
		}
	} else if key != "" && since.Equal(now) {
		c.rec.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.Name)
	}
	return c.evictPods(ctx, node, now)
}

// lastHeartbeat is when node was last heard from, but never earlier than
// when this controller started (a restarted server gives every node a
// full grace period).
func (c *NodeLifecycleController) lastHeartbeat(node *corev1.Node) time.Time {
	var last time.Time
	// A Ready=Unknown condition is written by the server, not the node:
	// its lastHeartbeatTime says nothing about the node.
	if cond := readyCondition(node); cond != nil && cond.Status != corev1.ConditionUnknown {
		last = cond.LastHeartbeatTime.Time
	}
	if c.opts.Heartbeats != nil {
		if t, ok := c.opts.Heartbeats.LastHeartbeat(node.Name); ok && t.After(last) {
			last = t
		}
	}
	if last.Before(c.started) {
		last = c.started
	}
	return last
}

func readyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// markUnknown sets node's Ready condition to Unknown, keeping its last
// heartbeat time.
func (c *NodeLifecycleController) markUnknown(ctx context.Context, node *corev1.Node, now time.Time) error {
	if cond := readyCondition(node); cond != nil && cond.Status == corev1.ConditionUnknown {
		return nil
	}
	out := node.DeepCopy()
	cond := readyCondition(out)
	if cond == nil {
		out.Status.Conditions = append(out.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady})
		cond = &out.Status.Conditions[len(out.Status.Conditions)-1]
	}
	cond.Status = corev1.ConditionUnknown
	cond.Reason = "NodeStatusUnknown"
	cond.Message = "Kubelet stopped posting node status."
	cond.LastTransitionTime = metav1.NewTime(now)
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.lg.Info("node stopped posting status", "node", node.Name)
	c.rec.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.Name)
	return nil
}
