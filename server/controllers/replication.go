package controllers

import (
	"context"
	"log/slog"
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

// rcKind is the group/version/kind of a ReplicationController, as owner
// references name it.
var rcKind = corev1.SchemeGroupVersion.WithKind("ReplicationController")

// ReplicationOptions tunes a ReplicationManager.
type ReplicationOptions struct {
	// Recorder records SuccessfulCreate, SuccessfulDelete and FailedCreate
	// events; nil records none.
	Recorder EventRecorder
	// BurstReplicas caps the pods created or deleted by one sync
	// (default 500).
	BurstReplicas int
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// ReplicationManager keeps the pods of every ReplicationController at its
// replica count: it creates pods from the template, deletes surplus ones,
// adopts orphans its selector matches, releases pods that stop matching,
// and reports counts in the status.
type ReplicationManager struct {
	client kubernetes.Interface
	rcs    corelisters.ReplicationControllerLister
	pods   corelisters.PodLister
	rec    EventRecorder
	opts   ReplicationOptions
	lg     *slog.Logger
	exp    *expectations
	loop   *loop
	synced []cache.InformerSynced
}

// NewReplicationManager returns a ReplicationManager fed by the given
// informers. lg may be nil.
func NewReplicationManager(client kubernetes.Interface, rcs coreinformers.ReplicationControllerInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts ReplicationOptions) (*ReplicationManager, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.BurstReplicas <= 0 {
		opts.BurstReplicas = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lg = lg.With("component", "replication-controller")
	m := &ReplicationManager{
		client: client,
		rcs:    rcs.Lister(),
		pods:   pods.Lister(),
		rec:    recorderOr(opts.Recorder),
		opts:   opts,
		lg:     lg,
		exp:    newExpectations(opts.Now),
	}
	m.loop = newLoop("replicationcontroller", lg, m.sync)
	var err error
	m.synced, err = addHandlers(
		handler{rcs.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    m.enqueueRC,
			UpdateFunc: func(_, obj any) { m.enqueueRC(obj) },
			DeleteFunc: m.enqueueRC,
		}},
		handler{pods.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    m.addPod,
			UpdateFunc: m.updatePod,
			DeleteFunc: m.deletePod,
		}},
	)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Run syncs replication controllers with workers goroutines until ctx
// ends, and returns after they have stopped.
func (m *ReplicationManager) Run(ctx context.Context, workers int) error {
	return m.loop.run(ctx, workers, m.synced...)
}

func (m *ReplicationManager) enqueueRC(obj any) {
	if key, ok := keyOf(obj); ok {
		m.loop.add(key)
	}
}

// controllerOf returns the key of the RC that is pod's controller and
// still exists with the referenced uid.
func (m *ReplicationManager) controllerOf(pod *corev1.Pod) (string, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != rcKind.Kind || ref.APIVersion != "v1" {
		return "", false
	}
	rc, err := m.rcs.ReplicationControllers(pod.Namespace).Get(ref.Name)
	if err != nil || rc.UID != ref.UID {
		return "", false
	}
	return pod.Namespace + "/" + ref.Name, true
}

// enqueueMatching enqueues every RC in pod's namespace whose selector
// matches pod, for adoption.
func (m *ReplicationManager) enqueueMatching(pod *corev1.Pod) {
	rcs, err := m.rcs.ReplicationControllers(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, rc := range rcs {
		if rcSelector(rc).Matches(labels.Set(pod.Labels)) {
			m.loop.add(pod.Namespace + "/" + rc.Name)
		}
	}
}

func (m *ReplicationManager) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		m.deletePod(pod)
		return
	}
	if key, ok := m.controllerOf(pod); ok {
		m.exp.creationObserved(key)
		m.loop.add(key)
		return
	}
	if metav1.GetControllerOf(pod) == nil {
		m.enqueueMatching(pod)
	}
}

func (m *ReplicationManager) updatePod(oldObj, obj any) {
	old, pod := oldObj.(*corev1.Pod), obj.(*corev1.Pod)
	if old.ResourceVersion == pod.ResourceVersion {
		return
	}
	if key, ok := m.controllerOf(old); ok {
		m.loop.add(key)
	}
	if key, ok := m.controllerOf(pod); ok {
		if pod.DeletionTimestamp != nil {
			m.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
		}
		m.loop.add(key)
		return
	}
	if metav1.GetControllerOf(pod) == nil && pod.DeletionTimestamp == nil {
		m.enqueueMatching(pod)
	}
}

func (m *ReplicationManager) deletePod(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	if key, ok := m.controllerOf(pod); ok {
		m.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
		m.loop.add(key)
	}
}

// sync brings one RC's pods and status in line with its spec.
func (m *ReplicationManager) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rc, err := m.rcs.ReplicationControllers(ns).Get(name)
	if apierrors.IsNotFound(err) {
		m.exp.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	all, err := m.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	owned, err := m.claim(ctx, rc, all)
	if err != nil {
		return err
	}
	active := activePods(owned)
	var manageErr error
	if m.exp.satisfied(key) && rc.DeletionTimestamp == nil {
		manageErr = m.manage(ctx, key, rc, active)
	}
	if err := m.updateStatus(ctx, key, rc, active, manageErr); err != nil {
		return err
	}
	return manageErr
}

// rcSelector is rc's pod selector; an empty one selects nothing.
func rcSelector(rc *corev1.ReplicationController) labels.Selector {
	if len(rc.Spec.Selector) == 0 {
		return labels.Nothing()
	}
	return labels.SelectorFromSet(rc.Spec.Selector)
}

func rcReplicas(rc *corev1.ReplicationController) int {
	if rc.Spec.Replicas == nil {
		return 1
	}
	return int(*rc.Spec.Replicas)
}

// activePods returns the pods that count towards replicas: not finished
// and not being deleted.
func activePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}
