package controllers

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
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

// Defaults of PodGCOptions, as kube-controller-manager's.
const (
	DefaultTerminatedPodGCThreshold = 12500
	DefaultPodGCPeriod              = 20 * time.Second
	DefaultPodGCQuarantine          = 40 * time.Second
)

// PodGCOptions tunes a PodGCController.
type PodGCOptions struct {
	// TerminatedPodThreshold is how many terminated pods (Succeeded or
	// Failed) may exist; past it the oldest are deleted, evicted ones
	// first. 0 means DefaultTerminatedPodGCThreshold; a negative value
	// keeps them all.
	TerminatedPodThreshold int
	// Period is how often pods are collected (default
	// DefaultPodGCPeriod).
	Period time.Duration
	// Quarantine is how long a node must have been missing before its
	// pods count as orphaned (default DefaultPodGCQuarantine): a pod may
	// be bound to a node whose Node the informer has not seen yet.
	Quarantine time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

func (o PodGCOptions) withDefaults() PodGCOptions {
	if o.TerminatedPodThreshold == 0 {
		o.TerminatedPodThreshold = DefaultTerminatedPodGCThreshold
	}
	if o.Period <= 0 {
		o.Period = DefaultPodGCPeriod
	}
	if o.Quarantine <= 0 {
		o.Quarantine = DefaultPodGCQuarantine
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// PodGCController deletes the pods no one else will, as the upstream pod
// garbage collector does, every Period:
//   - pods bound to a node that has been gone for Quarantine (and that an
//     API read confirms gone): marked Failed with a DisruptionTarget
//     condition, then deleted at once;
//   - terminating pods on a node that is not Ready and carries the
//     node.kubernetes.io/out-of-service taint, whose agent will never
//     report them stopped: marked Failed and deleted at once;
//   - terminating pods never scheduled: deleted at once;
//   - terminated pods past TerminatedPodThreshold: the oldest, evicted
//     ones first.
//
// Deleted at once means a grace period of 0: a pod with finalizers
// stays until they are removed.
type PodGCController struct {
	client kubernetes.Interface
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	opts   PodGCOptions
	lg     *slog.Logger
	synced []cache.InformerSynced

	// missing is when each node pods are bound to was first found
	// missing. Only the collecting goroutine uses it.
	missing map[string]time.Time
}

// NewPodGCController returns a PodGCController fed by the given
// informers. lg may be nil.
func NewPodGCController(client kubernetes.Interface, pods coreinformers.PodInformer, nodes coreinformers.NodeInformer, lg *slog.Logger, opts PodGCOptions) *PodGCController {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &PodGCController{
		client: client, pods: pods.Lister(), nodes: nodes.Lister(), opts: opts.withDefaults(),
		lg:      lg.With("component", "podgc"),
		synced:  []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced},
		missing: map[string]time.Time{},
	}
}

// Run collects pods every Period until ctx ends. workers is unused: one
// pass at a time collects everything.
func (c *PodGCController) Run(ctx context.Context, _ int) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	t := time.NewTicker(c.opts.Period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := c.collect(ctx); err != nil && ctx.Err() == nil {
				c.lg.Warn("collecting pods", "err", err)
			}
		}
	}
}

// collect runs one pass over the informers' pods and nodes. Errors of
// single pods are joined; the next pass tries them again.
func (c *PodGCController) collect(ctx context.Context) error {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	var errs []error
	if c.opts.TerminatedPodThreshold > 0 {
		errs = append(errs, c.collectTerminated(ctx, pods))
	}
	errs = append(errs, c.collectOutOfService(ctx, pods), c.collectOrphaned(ctx, pods), c.collectUnscheduled(ctx, pods))
	return errors.Join(errs...)
}

// collectTerminated deletes the terminated pods past the threshold.
func (c *PodGCController) collectTerminated(ctx context.Context, pods []*corev1.Pod) error {
	var terminated []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			terminated = append(terminated, p)
		}
	}
	extra := len(terminated) - c.opts.TerminatedPodThreshold
	if extra <= 0 {
		return nil
	}
	slices.SortFunc(terminated, evictedThenOldest)
	c.lg.Info("too many terminated pods; deleting the oldest", "terminated", len(terminated), "deleting", extra)
	var errs []error
	for _, p := range terminated[:extra] {
		errs = append(errs, c.failAndDelete(ctx, p, nil, "terminated pods past the threshold"))
	}
	return errors.Join(errs...)
}

// evictedThenOldest orders pods evicted ones first, then by creation,
// then by name.
func evictedThenOldest(a, b *corev1.Pod) int {
	if ea, eb := isEvicted(a), isEvicted(b); ea != eb {
		if ea {
			return -1
		}
		return 1
	}
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// isEvicted reports whether a node's agent evicted p.
func isEvicted(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted"
}

// collectOutOfService deletes the terminating pods of nodes that are not
// Ready and are tainted out-of-service.
func (c *PodGCController) collectOutOfService(ctx context.Context, pods []*corev1.Pod) error {
	var errs []error
	for _, p := range pods {
		if p.DeletionTimestamp == nil || p.Spec.NodeName == "" {
			continue
		}
		node, err := c.nodes.Get(p.Spec.NodeName)
		if err != nil {
			continue // a missing node is collectOrphaned's
		}
		if isNodeReady(node) || !hasTaintKey(node, corev1.TaintNodeOutOfService) {
			continue
		}
		errs = append(errs, c.failAndDelete(ctx, p, nil, "terminating on an out-of-service node"))
	}
	return errors.Join(errs...)
}

// collectOrphaned deletes the pods of nodes missing for the quarantine.
func (c *PodGCController) collectOrphaned(ctx context.Context, pods []*corev1.Pod) error {
	now := c.opts.Now()
	bound := map[string]bool{} // node → gone for good
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			bound[p.Spec.NodeName] = false
		}
	}
	for name := range c.missing {
		if _, ok := bound[name]; !ok {
			delete(c.missing, name) // no pod is bound to it any more
		}
	}
	var errs []error
	for name := range bound {
		if _, err := c.nodes.Get(name); err == nil {
			delete(c.missing, name)
			continue
		}
		since, ok := c.missing[name]
		if !ok {
			c.missing[name] = now
			continue
		}
		if now.Sub(since) < c.opts.Quarantine {
			continue
		}
		// The informer may lag: the API has the last word.
		_, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			bound[name] = true
		case err != nil:
			errs = append(errs, err)
		default:
			delete(c.missing, name)
		}
	}
	gone := &corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "DeletionByPodGC", Message: "PodGC: node no longer exists"}
	for _, p := range pods {
		if bound[p.Spec.NodeName] {
			errs = append(errs, c.failAndDelete(ctx, p, gone, "bound to a node that no longer exists"))
		}
	}
	return errors.Join(errs...)
}

// collectUnscheduled deletes the terminating pods that were never
// scheduled: no agent will report them stopped.
func (c *PodGCController) collectUnscheduled(ctx context.Context, pods []*corev1.Pod) error {
	var errs []error
	for _, p := range pods {
		if p.DeletionTimestamp != nil && p.Spec.NodeName == "" {
			errs = append(errs, c.failAndDelete(ctx, p, nil, "terminating and never scheduled"))
		}
	}
	return errors.Join(errs...)
}

// failAndDelete gives a pod that has not terminated the Failed phase
// (and cond, if set), since no agent will, then deletes it with a grace
// period of 0. A pod gone or replaced meanwhile is left alone.
func (c *PodGCController) failAndDelete(ctx context.Context, pod *corev1.Pod, cond *corev1.PodCondition, why string) error {
	pods := c.client.CoreV1().Pods(pod.Namespace)
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		out := pod.DeepCopy()
		out.Status.Phase = corev1.PodFailed
		if cond != nil {
			setPodCondition(&out.Status, *cond, metav1.NewTime(c.opts.Now()))
		}
		_, err := pods.UpdateStatus(ctx, out, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err // a conflict is tried again by the next pass
		}
	}
	zero := int64(0)
	err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.lg.Info("pod deleted", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName, "why", why)
	return nil
}

// setPodCondition puts cond into st, keeping its transition time if its
// status does not change.
func setPodCondition(st *corev1.PodStatus, cond corev1.PodCondition, now metav1.Time) {
	cond.LastTransitionTime = now
	for i := range st.Conditions {
		if st.Conditions[i].Type != cond.Type {
			continue
		}
		if st.Conditions[i].Status == cond.Status {
			cond.LastTransitionTime = st.Conditions[i].LastTransitionTime
		}
		st.Conditions[i] = cond
		return
	}
	st.Conditions = append(st.Conditions, cond)
}

// isNodeReady reports whether node's Ready condition is True.
func isNodeReady(node *corev1.Node) bool {
	c := readyCondition(node)
	return c != nil && c.Status == corev1.ConditionTrue
}

func hasTaintKey(node *corev1.Node, key string) bool {
	return slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
}
