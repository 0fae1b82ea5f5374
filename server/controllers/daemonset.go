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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	client  kubernetes.Interface
	dss     appslisters.DaemonSetLister
	revs    appslisters.ControllerRevisionLister
	pods    cache.Indexer // by controller (indexByController)
	nodes   corelisters.NodeLister
	rec     EventRecorder
	opts    DaemonSetOptions
	lg      *slog.Logger
	exp     *expectations
	backoff *flowcontrol.Backoff // failed pod deletions, by DaemonSet uid and node
	loop    *loop
	synced  []cache.InformerSynced
}

// NewDaemonSetController returns a DaemonSetController fed by the given
// informers. lg may be nil.
func NewDaemonSetController(client kubernetes.Interface, dss appsinformers.DaemonSetInformer, revs appsinformers.ControllerRevisionInformer,
	pods coreinformers.PodInformer, nodes coreinformers.NodeInformer, lg *slog.Logger, opts DaemonSetOptions) (*DaemonSetController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.BurstReplicas <= 0 {
		opts.BurstReplicas = 250
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lg = lg.With("component", "daemonset-controller")
	c := &DaemonSetController{
		client:  client,
		dss:     dss.Lister(),
		revs:    revs.Lister(),
		pods:    pods.Informer().GetIndexer(),
		nodes:   nodes.Lister(),
		rec:     recorderOr(opts.Recorder),
		opts:    opts,
		lg:      lg,
		exp:     newExpectations(opts.Now),
		backoff: flowcontrol.NewBackOff(time.Second, 15*time.Minute),
	}
	if err := indexByController(pods); err != nil {
		return nil, err
	}
	c.loop = newLoop("daemonset", lg, c.sync)
	var err error
	c.synced, err = addHandlers(
		handler{dss.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, obj any) { c.enqueue(obj) },
			DeleteFunc: c.enqueue,
		}},
		handler{revs.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.revisionChanged,
			UpdateFunc: func(old, obj any) { c.revisionChanged(old); c.revisionChanged(obj) },
			DeleteFunc: c.revisionChanged,
		}},
		handler{pods.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
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
	return c.loop.run(ctx, workers, c.synced...)
}

func (c *DaemonSetController) enqueue(obj any) {
	if key, ok := keyOf(obj); ok {
		c.loop.add(key)
	}
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
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != dsKind.Kind || ref.APIVersion != dsKind.GroupVersion().String() {
		return "", false
	}
	ds, err := c.dss.DaemonSets(obj.GetNamespace()).Get(ref.Name)
	if err != nil || ds.UID != ref.UID {
		return "", false
	}
	return ds.Namespace + "/" + ds.Name, true
}

// enqueueMatching enqueues the DaemonSets in obj's namespace whose
// selector matches its labels, for adoption.
func (c *DaemonSetController) enqueueMatching(obj metav1.Object) {
	all, err := c.dss.DaemonSets(obj.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(obj.GetLabels())) {
			c.loop.add(ds.Namespace + "/" + ds.Name)
		}
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

func (c *DaemonSetController) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		c.deletePod(pod)
		return
	}
	if key, ok := c.controllerOf(pod); ok {
		c.exp.creationObserved(key)
		c.loop.add(key)
		return
	}
	if metav1.GetControllerOf(pod) == nil {
		c.enqueueMatching(pod)
	}
}

func (c *DaemonSetController) updatePod(oldObj, obj any) {
	old, pod := oldObj.(*corev1.Pod), obj.(*corev1.Pod)
	if old.ResourceVersion == pod.ResourceVersion {
		return
	}
	if key, ok := c.controllerOf(old); ok {
		c.loop.add(key)
	}
	key, ok := c.controllerOf(pod)
	if !ok {
		if metav1.GetControllerOf(pod) == nil && pod.DeletionTimestamp == nil {
			c.enqueueMatching(pod)
		}
		return
	}
	if pod.DeletionTimestamp != nil {
		c.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
	}
	c.loop.add(key)
	// A pod that just became ready becomes available minReadySeconds
	// later; nothing else will say so.
	if !podReady(old) && podReady(pod) {
		ds, err := c.dss.DaemonSets(pod.Namespace).Get(metav1.GetControllerOf(pod).Name)
		if err == nil && ds.Spec.MinReadySeconds > 0 {
			c.loop.addAfter(key, time.Duration(ds.Spec.MinReadySeconds)*time.Second+time.Second)
		}
	}
}

func (c *DaemonSetController) deletePod(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	if key, ok := c.controllerOf(pod); ok {
		c.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
		c.loop.add(key)
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
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.dss.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	ds := cached.DeepCopy()
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
