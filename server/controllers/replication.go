package controllers

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
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
	workload
	kind *replicaKind
	pods cache.Indexer
	opts ReplicationOptions
	exp  *expectations
}

// NewReplicationManager returns a ReplicaManager of ReplicationControllers
// fed by the given informers. lg may be nil.
func NewReplicationManager(client kubernetes.Interface, rcs coreinformers.ReplicationControllerInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts ReplicationOptions) (*ReplicaManager, error) {
	return newReplicaManager(client, replicationControllerKind(client, rcs), pods, lg, "replication", opts)
}

// NewReplicaSetManager returns a ReplicaManager of apps/v1 ReplicaSets fed
// by the given informers. lg may be nil.
func NewReplicaSetManager(client kubernetes.Interface, rss appsinformers.ReplicaSetInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts ReplicationOptions) (*ReplicaManager, error) {
	return newReplicaManager(client, replicaSetKind(client, rss), pods, lg, "replicaset", opts)
}

func newReplicaManager(client kubernetes.Interface, kind *replicaKind, pods coreinformers.PodInformer, lg *slog.Logger, name string, opts ReplicationOptions) (*ReplicaManager, error) {
	if opts.BurstReplicas <= 0 {
		opts.BurstReplicas = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &ReplicaManager{kind: kind, pods: pods.Informer().GetIndexer(), opts: opts, exp: newExpectations(opts.Now)}
	m.workload = newWorkload(client, name, opts.Recorder, lg, m.sync)
	if err := indexByController(pods); err != nil {
		return nil, err
	}
	err := m.loop.watch(
		m.loop.own(kind.informer),
		(&podEvents{loop: m.loop, exp: m.exp, controllerOf: m.controllerOf, adopters: m.enqueueMatching}).handler(pods.Informer()),
	)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// get returns the object of m's kind that key names from the informer's
// cache; see cached.
func (m *ReplicaManager) get(key string, forget ...func(string)) (*replicated, bool, error) {
	obj, found, err := cached[runtime.Object](m.loop, key, forget...)
	if !found {
		return nil, false, err
	}
	return m.kind.from(obj), true, nil
}

// controllerOf returns the key of the object of m's kind that is pod's
// controller and still exists with the referenced uid.
func (m *ReplicaManager) controllerOf(pod *corev1.Pod) (string, bool) {
	key, ok := controllerKeyOf(pod, m.kind.gvk)
	if !ok {
		return "", false
	}
	r, found, _ := m.get(key)
	if !found || r.meta.UID != metav1.GetControllerOf(pod).UID {
		return "", false
	}
	return key, true
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

// sync brings one object's pods and status in line with its spec.
func (m *ReplicaManager) sync(ctx context.Context, key string) error {
	r, found, err := m.get(key, m.exp.forget)
	if !found {
		return err
	}
	candidates, err := podsToClaim(m.pods, r.meta.Namespace, r.meta.UID)
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
