package controllers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
)

// dsKind is the group/version/kind of a DaemonSet, as owner references
// name it.
var dsKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// DaemonSetOptions tunes a DaemonSetController.
type DaemonSetOptions struct {
	// Recorder records SuccessfulCreate, SuccessfulDelete, FailedCreate,
	// FailedDaemonPod and SelectingAll events; nil records none.
	Recorder EventRecorder
	// BurstReplicas caps the pods created or deleted by one sync
	// (default 250).
	BurstReplicas int
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// DaemonSetController runs one pod of every DaemonSet on each node that
// can run it, as Kubernetes does:
//
//   - A node is eligible when it matches the template's nodeName,
//     nodeSelector and required node affinity, and has no NoSchedule or
//     NoExecute taint the pod does not tolerate. A pod keeps running on a
//     node that only gained an untolerated NoSchedule taint.
//   - Pods are created with the tolerations upstream gives daemon pods
//     (not-ready and unreachable NoExecute; disk, memory and pid pressure
//     and unschedulable NoSchedule; network-unavailable for host-network
//     pods) and a required node affinity on metadata.name, which the
//     scheduler honours; failed pods are deleted (with a backoff per node)
//     and replaced.
//   - Each template is kept as a ControllerRevision named and labelled by
//     its hash; pods carry controller-revision-hash and
//     pod-template-generation. RollingUpdate replaces old pods within
//     maxUnavailable, or surges new ones within maxSurge; OnDelete waits
//     for the user to delete them. Old revisions beyond
//     revisionHistoryLimit that no pod runs are deleted.
type DaemonSetController struct {
	workload
	dss     appslisters.DaemonSetLister
	revs    appslisters.ControllerRevisionLister
	pods    cache.Indexer // by controller (indexByController)
	nodes   corelisters.NodeLister
	opts    DaemonSetOptions
	exp     *expectations
	backoff *flowcontrol.Backoff // failed pod deletions, by DaemonSet uid and node
}

// NewDaemonSetController returns a DaemonSetController fed by the given
// informers. lg may be nil.
func NewDaemonSetController(client kubernetes.Interface, dss appsinformers.DaemonSetInformer, revs appsinformers.ControllerRevisionInformer,
	pods coreinformers.PodInformer, nodes coreinformers.NodeInformer, lg *slog.Logger, opts DaemonSetOptions) (*DaemonSetController, error) {
	if opts.BurstReplicas <= 0 {
		opts.BurstReplicas = 250
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &DaemonSetController{
		dss:     dss.Lister(),
		revs:    revs.Lister(),
		pods:    pods.Informer().GetIndexer(),
		nodes:   nodes.Lister(),
		opts:    opts,
		exp:     newExpectations(opts.Now),
		backoff: flowcontrol.NewBackOff(time.Second, 15*time.Minute),
	}
	c.workload = newWorkload(client, "daemonset", opts.Recorder, lg, c.sync)
	if err := indexByController(pods); err != nil {
		return nil, err
	}
	err := c.loop.watch(
		c.loop.own(dss.Informer()),
		each(revs.Informer(), c.revisionChanged),
		(&podEvents{
			loop: c.loop, exp: c.exp, updated: c.podUpdated,
			controllerOf: func(p *corev1.Pod) (string, bool) { return c.controllerOf(p) },
			adopters:     func(p *corev1.Pod) { c.enqueueMatching(p) },
		}).handler(pods.Informer()),
		handler{nodes.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addNode,
			UpdateFunc: c.updateNode,
			DeleteFunc: func(any) { c.enqueueAll() },
		}},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs DaemonSets with workers goroutines until ctx ends, and
// returns after they have stopped.
func (c *DaemonSetController) Run(ctx context.Context, workers int) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.backoff.GC() // forget nodes whose pods stopped failing
			}
		}
	})
	return c.loop.run(ctx, workers)
}

func (c *DaemonSetController) enqueueAll() {
	all, err := c.dss.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		c.loop.add(ds.Namespace + "/" + ds.Name)
	}
}

// controllerOf returns the key of the DaemonSet that controls obj and
// still exists with the referenced uid.
func (c *DaemonSetController) controllerOf(obj metav1.Object) (string, bool) {
	key, ok := controllerKeyOf(obj, dsKind)
	if !ok {
		return "", false
	}
	ref := metav1.GetControllerOf(obj)
	ds, err := c.dss.DaemonSets(obj.GetNamespace()).Get(ref.Name)
	if err != nil || ds.UID != ref.UID {
		return "", false
	}
	return key, true
}

// enqueueMatching enqueues the DaemonSets in obj's namespace whose
// selector matches its labels, for adoption.
func (c *DaemonSetController) enqueueMatching(obj metav1.Object) {
	if all, err := c.dss.DaemonSets(obj.GetNamespace()).List(labels.Everything()); err == nil {
		addSelecting(c.loop, all, func(ds *appsv1.DaemonSet) *metav1.LabelSelector { return ds.Spec.Selector }, obj.GetLabels())
	}
}

func (c *DaemonSetController) revisionChanged(obj any) {
	rev, ok := untombstone(obj).(*appsv1.ControllerRevision)
	if !ok {
		return
	}
	if key, ok := c.controllerOf(rev); ok {
		c.loop.add(key)
	} else if metav1.GetControllerOf(rev) == nil {
		c.enqueueMatching(rev)
	}
}

// podUpdated syncs a pod's DaemonSet again once a pod that just became
// ready becomes available, minReadySeconds later: nothing else will say
// so.
func (c *DaemonSetController) podUpdated(key string, old, pod *corev1.Pod) {
	if podReady(old) || !podReady(pod) {
		return
	}
	ds, err := c.dss.DaemonSets(pod.Namespace).Get(metav1.GetControllerOf(pod).Name)
	if err == nil && ds.Spec.MinReadySeconds > 0 {
		c.loop.addAfter(key, time.Duration(ds.Spec.MinReadySeconds)*time.Second+time.Second)
	}
}

func (c *DaemonSetController) addNode(obj any) {
	node := obj.(*corev1.Node)
	all, err := c.dss.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		if run, _ := shouldRunOn(newPlacement(ds), node); run {
			c.loop.add(ds.Namespace + "/" + ds.Name)
		}
	}
}

// updateNode enqueues the DaemonSets for which a change of a node's
// labels or taints changes whether they run there.
func (c *DaemonSetController) updateNode(oldObj, obj any) {
	old, node := oldObj.(*corev1.Node), obj.(*corev1.Node)
	if apiequality.Semantic.DeepEqual(old.Labels, node.Labels) && apiequality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) {
		return
	}
	all, err := c.dss.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		p := newPlacement(ds)
		oldRun, oldKeep := shouldRunOn(p, old)
		run, keep := shouldRunOn(p, node)
		if oldRun != run || oldKeep != keep {
			c.loop.add(ds.Namespace + "/" + ds.Name)
		}
	}
}

// sync brings one DaemonSet's pods, revisions and status in line with its
// spec.
func (c *DaemonSetController) sync(ctx context.Context, key string) error {
	shared, found, err := cached[*appsv1.DaemonSet](c.loop, key, c.exp.forget)
	if !found {
		return err
	}
	ds := shared.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() {
		c.rec.Eventf(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	// The revisions of a DaemonSet being deleted may be gone or orphaned
	// already; its status can't be told, so it is left as it is.
	if ds.DeletionTimestamp != nil {
		return nil
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	cur, old, err := c.history(ctx, ds, sel)
	if err != nil {
		return err
	}
	hash := cur.Labels[appsv1.ControllerRevisionHashLabelKey]
	pods, err := c.claimPods(ctx, ds, sel)
	if err != nil {
		return err
	}
	if !c.exp.satisfied(key) {
		return c.updateStatus(ctx, ds, nodes, pods, hash, false)
	}
	err = c.manage(ctx, key, ds, nodes, pods, hash)
	if err == nil && c.exp.satisfied(key) && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		err = c.rollingUpdate(ctx, key, ds, nodes, pods, hash)
	}
	err = errors.Join(err, c.cleanupHistory(ctx, ds, pods, old))
	return errors.Join(err, c.updateStatus(ctx, ds, nodes, pods, hash, true))
}
