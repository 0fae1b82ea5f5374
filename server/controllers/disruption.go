package controllers

import (
	"context"
	"log/slog"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	policyinformers "k8s.io/client-go/informers/policy/v1"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
)

// DisruptedPodTimeout is how long a pod the eviction subresource took a
// disruption for may take to go before it counts as healthy again, as in
// Kubernetes.
const DisruptedPodTimeout = 2 * time.Minute

// DisruptionOptions tunes a DisruptionController.
type DisruptionOptions struct {
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// DisruptionController keeps the status of every PodDisruptionBudget: the
// pods its selector matches (expectedPods, or the replicas of their
// ReplicationControllers), how many of them are ready (currentHealthy),
// how many must stay so (desiredHealthy) and so how many may be evicted
// now (disruptionsAllowed). The eviction subresource reads that status and
// takes from it; the controller recomputes it on every change of the
// budget or its pods.
type DisruptionController struct {
	client kubernetes.Interface
	pdbs   policylisters.PodDisruptionBudgetLister
	pods   corelisters.PodLister
	rcs    corelisters.ReplicationControllerLister
	rss    appslisters.ReplicaSetLister
	deps   appslisters.DeploymentLister
	opts   DisruptionOptions
	lg     *slog.Logger
	loop   *loop
}

// NewDisruptionController returns a DisruptionController fed by the given
// informers (apps for the ReplicaSets and Deployments that control pods).
// lg may be nil.
func NewDisruptionController(client kubernetes.Interface, pdbs policyinformers.PodDisruptionBudgetInformer, pods coreinformers.PodInformer, rcs coreinformers.ReplicationControllerInformer, apps appsinformers.Interface, lg *slog.Logger, opts DisruptionOptions) (*DisruptionController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lg = lg.With("component", "disruption")
	c := &DisruptionController{
		client: client, pdbs: pdbs.Lister(), pods: pods.Lister(), rcs: rcs.Lister(),
		rss: apps.ReplicaSets().Lister(), deps: apps.Deployments().Lister(), opts: opts, lg: lg,
	}
	scaled := cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, obj any) { c.enqueueNamespace(obj) }}
	c.loop = newLoop("disruption", lg, c.sync)
	err := c.loop.watch(
		handler{pdbs.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, obj any) { c.enqueue(obj) },
			DeleteFunc: c.enqueue,
		}},
		handler{pods.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: c.enqueueForPod,
			UpdateFunc: func(old, obj any) {
				c.enqueueForPod(old)
				c.enqueueForPod(obj)
			},
			DeleteFunc: c.enqueueForPod,
		}},
		handler{rcs.Informer(), scaled},
		handler{apps.ReplicaSets().Informer(), scaled},
		handler{apps.Deployments().Informer(), scaled},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs budgets with workers goroutines until ctx ends, and returns
// after they have stopped.
func (c *DisruptionController) Run(ctx context.Context, workers int) error {
	return c.loop.run(ctx, workers)
}

func (c *DisruptionController) enqueue(obj any) {
	if key, ok := keyOf(obj); ok {
		c.loop.add(key)
	}
}

// enqueueForPod enqueues the budgets whose selector matches pod.
func (c *DisruptionController) enqueueForPod(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	for _, pdb := range c.budgetsOf(pod.Namespace) {
		if sel, ok := pdbSelector(pdb); ok && sel.Matches(labels.Set(pod.Labels)) {
			c.loop.add(pdb.Namespace + "/" + pdb.Name)
		}
	}
}

// enqueueNamespace enqueues every budget in obj's namespace (the
// replicas of a pods' controller changed).
func (c *DisruptionController) enqueueNamespace(obj any) {
	m, err := meta.Accessor(untombstone(obj))
	if err != nil {
		return
	}
	for _, pdb := range c.budgetsOf(m.GetNamespace()) {
		c.loop.add(pdb.Namespace + "/" + pdb.Name)
	}
}

func (c *DisruptionController) budgetsOf(ns string) []*policyv1.PodDisruptionBudget {
	pdbs, _ := c.pdbs.PodDisruptionBudgets(ns).List(labels.Everything())
	return pdbs
}

// pdbSelector is the budget's selector; ok is false for none (a nil
// selector matches no pod) or an invalid one.
func pdbSelector(pdb *policyv1.PodDisruptionBudget) (labels.Selector, bool) {
	if pdb.Spec.Selector == nil {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	return sel, err == nil
}

// sync recomputes one budget's status and writes it if it changed.
func (c *DisruptionController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.pdbs.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var pods []*corev1.Pod
	if sel, ok := pdbSelector(pdb); ok {
		if pods, err = c.pods.Pods(ns).List(sel); err != nil {
			return err
		}
	}
	st, recheck := c.status(pdb, pods)
	if recheck > 0 {
		c.loop.addAfter(key, recheck)
	}
	if equality.Semantic.DeepEqual(st, pdb.Status) {
		return nil
	}
	out := pdb.DeepCopy()
	out.Status = st
	_, err = c.client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// status computes pdb's status from its pods, and when a disrupted pod's
// timeout ends (0 for none).
func (c *DisruptionController) status(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (policyv1.PodDisruptionBudgetStatus, time.Duration) {
	now := c.opts.Now()
	disrupted, recheck := c.disrupted(pdb, pods, now)
	var live []*corev1.Pod
	healthy := int32(0)
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		live = append(live, p)
		if _, gone := disrupted[p.Name]; !gone && p.Status.Phase == corev1.PodRunning && podReady(p) {
			healthy++
		}
	}
	expected, desired := c.desired(pdb, live)
	allowed := max(healthy-desired, 0)
	if expected <= 0 {
		// As in Kubernetes: a budget expecting no pods allows nothing,
		// so that it is safe while pods it does not yet count appear
		// (or while its controller scales to zero).
		allowed = 0
	}
	st := policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation,
		DisruptedPods:      disrupted,
		CurrentHealthy:     healthy,
		DesiredHealthy:     desired,
		ExpectedPods:       expected,
		DisruptionsAllowed: allowed,
	}
	if len(st.DisruptedPods) == 0 {
		st.DisruptedPods = nil
	}
	cond := metav1.Condition{
		Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionTrue,
		Reason: policyv1.SufficientPodsReason, ObservedGeneration: pdb.Generation,
	}
	if st.DisruptionsAllowed == 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, policyv1.InsufficientPodsReason
	}
	st.Conditions = setPDBCondition(pdb.Status.Conditions, cond, now)
	return st, recheck
}

// disrupted keeps the disrupted pods that still exist and are within
// their timeout; a pod disrupted longer ago counts again.
func (c *DisruptionController) disrupted(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (map[string]metav1.Time, time.Duration) {
	exists := map[string]bool{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			exists[p.Name] = true
		}
	}
	out := map[string]metav1.Time{}
	var recheck time.Duration
	for name, at := range pdb.Status.DisruptedPods {
		left := at.Add(DisruptedPodTimeout).Sub(now)
		if !exists[name] || left <= 0 {
			continue
		}
		out[name] = at
		if recheck == 0 || left < recheck {
			recheck = left
		}
	}
	return out, recheck
}

// desired returns the pods expected and how many must be healthy:
// minAvailable of the expected pods, or all but maxUnavailable of them.
// As in Kubernetes, an integer minAvailable expects the pods there are;
// otherwise pods controlled by a ReplicationController, a ReplicaSet or
// a Deployment (through its ReplicaSet) count as its replicas, and
// others count themselves.
func (c *DisruptionController) desired(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desired int32) {
	if m := pdb.Spec.MinAvailable; m != nil && m.Type == intstr.Int {
		return int32(len(pods)), m.IntVal
	}
	expected = c.expected(pods)
	switch {
	case pdb.Spec.MinAvailable != nil:
		desired = scaled(*pdb.Spec.MinAvailable, expected, true)
	case pdb.Spec.MaxUnavailable != nil:
		desired = max(expected-scaled(*pdb.Spec.MaxUnavailable, expected, true), 0)
	default:
		// Neither set: in policy/v1 an empty budget allows no disruption
		// of the pods it selects.
		desired = expected
	}
	return expected, desired
}

func (c *DisruptionController) expected(pods []*corev1.Pod) int32 {
	n := int32(0)
	scales := map[types.UID]int32{}
	for _, p := range pods {
		uid, replicas, ok := c.controllerScale(p)
		if !ok {
			n++
			continue
		}
		scales[uid] = replicas
	}
	for _, r := range scales {
		n += r
	}
	return n
}

// controllerScale finds the object whose replicas pod counts among, as
// Kubernetes does: its ReplicationController, or its ReplicaSet, or the
// Deployment controlling that ReplicaSet. ok is false for a pod with no
// such controller.
func (c *DisruptionController) controllerScale(pod *corev1.Pod) (uid types.UID, replicas int32, ok bool) {
	ref := metav1.GetControllerOf(pod)
	switch {
	case ref == nil:
		return "", 0, false
	case ref.Kind == rcKind.Kind && ref.APIVersion == "v1":
		rc, err := c.rcs.ReplicationControllers(pod.Namespace).Get(ref.Name)
		if err != nil || rc.UID != ref.UID || rc.Spec.Replicas == nil {
			return "", 0, false
		}
		return rc.UID, *rc.Spec.Replicas, true
	case ref.Kind == rsKind.Kind && ref.APIVersion == rsKind.GroupVersion().String():
		rs, err := c.rss.ReplicaSets(pod.Namespace).Get(ref.Name)
		if err != nil || rs.UID != ref.UID || rs.Spec.Replicas == nil {
			return "", 0, false
		}
		if dref := metav1.GetControllerOf(rs); dref != nil && dref.Kind == deploymentKind.Kind && dref.APIVersion == deploymentKind.GroupVersion().String() {
			d, err := c.deps.Deployments(pod.Namespace).Get(dref.Name)
			if err == nil && d.UID == dref.UID && d.Spec.Replicas != nil {
				return d.UID, *d.Spec.Replicas, true
			}
			return "", 0, false
		}
		return rs.UID, *rs.Spec.Replicas, true
	}
	return "", 0, false
}

// scaled is v of total: an integer as is, a percentage rounded up (or
// down).
func scaled(v intstr.IntOrString, total int32, roundUp bool) int32 {
	if v.Type == intstr.Int {
		return v.IntVal
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, int(total), roundUp)
	if err != nil || n > math.MaxInt32 {
		return total
	}
	return int32(n)
}

// setPDBCondition replaces the condition of cond's type, keeping its
// transition time when the status is unchanged.
func setPDBCondition(conds []metav1.Condition, cond metav1.Condition, now time.Time) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(conds)+1)
	cond.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second))
	for _, c := range conds {
		if c.Type != cond.Type {
			out = append(out, c)
			continue
		}
		if c.Status == cond.Status {
			cond.LastTransitionTime = c.LastTransitionTime
		}
	}
	return append(out, cond)
}
