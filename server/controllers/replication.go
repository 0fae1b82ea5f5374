package controllers

import (
	"context"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// rcKind is the group/version/kind of a ReplicationController, as owner
// references name it.
var rcKind = corev1.SchemeGroupVersion.WithKind("ReplicationController")

// ReplicationOptions tunes a ReplicaManager.
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

// ReplicaManager keeps the pods of every ReplicationController, or of
// every ReplicaSet, at its replica count: it creates pods from the
// template, deletes surplus ones, adopts orphans its selector matches,
// releases pods that stop matching, and reports counts in the status.
// The two kinds differ only in their selector and group, so one
// implementation serves both, one manager per kind.
type ReplicaManager struct {
	client kubernetes.Interface
	kind   *replicaKind
	pods   cache.Indexer
	rec    EventRecorder
	opts   ReplicationOptions
	lg     *slog.Logger
	exp    *expectations
	loop   *loop
	synced []cache.InformerSynced
}

// NewReplicationManager returns a ReplicaManager of ReplicationControllers
// fed by the given informers. lg may be nil.
func NewReplicationManager(client kubernetes.Interface, rcs coreinformers.ReplicationControllerInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts ReplicationOptions) (*ReplicaManager, error) {
	return newReplicaManager(client, replicationControllerKind(client, rcs), pods, lg, "replication-controller", opts)
}

// NewReplicaSetManager returns a ReplicaManager of apps/v1 ReplicaSets fed
// by the given informers. lg may be nil.
func NewReplicaSetManager(client kubernetes.Interface, rss appsinformers.ReplicaSetInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts ReplicationOptions) (*ReplicaManager, error) {
	return newReplicaManager(client, replicaSetKind(client, rss), pods, lg, "replicaset-controller", opts)
}

func newReplicaManager(client kubernetes.Interface, kind *replicaKind, pods coreinformers.PodInformer, lg *slog.Logger, component string, opts ReplicationOptions) (*ReplicaManager, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.BurstReplicas <= 0 {
		opts.BurstReplicas = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lg = lg.With("component", component)
	m := &ReplicaManager{
		client: client,
		kind:   kind,
		pods:   pods.Informer().GetIndexer(),
		rec:    recorderOr(opts.Recorder),
		opts:   opts,
		lg:     lg,
		exp:    newExpectations(opts.Now),
	}
	m.loop = newLoop(strings.ToLower(kind.gvk.Kind), lg, m.sync)
	if err := indexByController(pods); err != nil {
		return nil, err
	}
	var err error
	m.synced, err = addHandlers(
		handler{kind.informer, cache.ResourceEventHandlerFuncs{
			AddFunc:    m.enqueue,
			UpdateFunc: func(_, obj any) { m.enqueue(obj) },
			DeleteFunc: m.enqueue,
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

// Run syncs the kept objects with workers goroutines until ctx ends, and
// returns after they have stopped.
func (m *ReplicaManager) Run(ctx context.Context, workers int) error {
	return m.loop.run(ctx, workers, m.synced...)
}

func (m *ReplicaManager) enqueue(obj any) {
	if key, ok := keyOf(obj); ok {
		m.loop.add(key)
	}
}

// controllerOf returns the key of the object of m's kind that is pod's
// controller and still exists with the referenced uid.
func (m *ReplicaManager) controllerOf(pod *corev1.Pod) (string, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != m.kind.gvk.Kind || ref.APIVersion != m.kind.gvk.GroupVersion().String() {
		return "", false
	}
	r, err := m.kind.get(pod.Namespace, ref.Name)
	if err != nil || r.meta.UID != ref.UID {
		return "", false
	}
	return pod.Namespace + "/" + ref.Name, true
}

// enqueueMatching enqueues every object of m's kind in pod's namespace
// whose selector matches pod, for adoption.
func (m *ReplicaManager) enqueueMatching(pod *corev1.Pod) {
	all, err := m.kind.list(pod.Namespace)
	if err != nil {
		return
	}
	for _, r := range all {
		if r.selector.Matches(labels.Set(pod.Labels)) {
			m.loop.add(pod.Namespace + "/" + r.meta.Name)
		}
	}
}

func (m *ReplicaManager) addPod(obj any) {
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

func (m *ReplicaManager) updatePod(oldObj, obj any) {
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

func (m *ReplicaManager) deletePod(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	if key, ok := m.controllerOf(pod); ok {
		m.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
		m.loop.add(key)
	}
}

// sync brings one object's pods and status in line with its spec.
func (m *ReplicaManager) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	r, err := m.kind.get(ns, name)
	if apierrors.IsNotFound(err) {
		m.exp.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	candidates, err := podsToClaim(m.pods, ns, r.meta.UID)
	if err != nil {
		return err
	}
	owned, err := m.claim(ctx, r, candidates)
	if err != nil {
		return err
	}
	active := activePods(owned)
	var manageErr error
	if m.exp.satisfied(key) && r.meta.DeletionTimestamp == nil {
		manageErr = m.manage(ctx, key, r, active)
	}
	if err := m.updateStatus(ctx, key, r, active, manageErr); err != nil {
		return err
	}
	return manageErr
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
