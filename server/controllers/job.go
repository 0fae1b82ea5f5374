package controllers

import (
	"context"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/server/registry"
)

// jobKind is the group/version/kind of a Job, as owner references name it.
var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

// JobOptions tunes a JobController.
type JobOptions struct {
	// Recorder records the controller's events; nil records none.
	Recorder EventRecorder
	// BurstReplicas caps the pods created or deleted by one sync
	// (default 500).
	BurstReplicas int
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// JobController runs the pods of every Job until enough succeed or the
// Job fails. Each pod it creates carries the batch.kubernetes.io/job-tracking
// finalizer; a finished pod is first recorded in the Job's
// status.uncountedTerminatedPods, then loses the finalizer, and only then
// is moved into the succeeded or failed count. A pod is therefore counted
// exactly once, even across a restart of the server: a finished pod that
// still has the finalizer has not been counted, and one in the uncounted
// list has not been added to the counts.
type JobController struct {
	workload
	jobs batchlisters.JobLister
	pods corelisters.PodLister
	opts JobOptions
	exp  *expectations
	// releasing holds the uids of pods whose finalizer the controller has
	// removed but whose update its informer may not show yet.
	releasing *uidSet
	backoff   *backoffStore
}

// NewJobController returns a JobController fed by the given informers.
// lg may be nil.
func NewJobController(client kubernetes.Interface, jobs batchinformers.JobInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts JobOptions) (*JobController, error) {
	if opts.BurstReplicas <= 0 {
		opts.BurstReplicas = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &JobController{
		jobs:      jobs.Lister(),
		pods:      pods.Lister(),
		opts:      opts,
		exp:       newExpectations(opts.Now),
		releasing: newUIDSet(),
		backoff:   newBackoffStore(),
	}
	c.workload = newWorkload(client, "job", opts.Recorder, lg, c.sync)
	err := c.loop.watch(
		c.loop.own(jobs.Informer()),
		handler{pods.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// jobKeyOf returns the key of the Job named as pod's controller, whether
// or not that Job still exists (a missing one still holds the pod's
// finalizer to release).
func jobKeyOf(pod *corev1.Pod) (string, bool) { return controllerKeyOf(pod, jobKind) }

func (c *JobController) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	key, ok := jobKeyOf(pod)
	if !ok {
		if metav1.GetControllerOf(pod) == nil && pod.DeletionTimestamp == nil {
			c.enqueueMatching(pod)
		}
		return
	}
	if pod.DeletionTimestamp == nil {
		c.exp.creationObserved(key)
	}
	c.loop.add(key)
}

func (c *JobController) updatePod(oldObj, obj any) {
	old, pod := oldObj.(*corev1.Pod), obj.(*corev1.Pod)
	if old.ResourceVersion == pod.ResourceVersion {
		return
	}
	if !hasTrackingFinalizer(pod) {
		c.releasing.remove(pod.UID)
	}
	if key, ok := jobKeyOf(old); ok {
		c.loop.add(key)
	}
	if key, ok := jobKeyOf(pod); ok {
		if pod.DeletionTimestamp != nil {
			c.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
		}
		c.loop.add(key)
		return
	}
	if metav1.GetControllerOf(pod) == nil && pod.DeletionTimestamp == nil {
		c.enqueueMatching(pod)
	}
}

func (c *JobController) deletePod(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	c.releasing.remove(pod.UID)
	if key, ok := jobKeyOf(pod); ok {
		c.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
		c.loop.add(key)
	}
}

// sync brings one Job's pods and status in line with its spec.
func (c *JobController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	job, found, err := cached[*batchv1.Job](c.loop, key, c.exp.forget, c.backoff.forget)
	if err != nil {
		return err
	}
	if !found {
		return c.releaseStrays(ctx, ns, name, "", labels.Everything())
	}
	byName := labels.SelectorFromSet(labels.Set{registry.LabelJobName: name})
	if err := c.releaseStrays(ctx, ns, name, job.UID, byName); err != nil {
		return err
	}
	pods, err := c.podsOf(ctx, job)
	if err != nil {
		return err
	}
	if jobFinished(job) {
		return c.syncFinished(ctx, key, job, pods)
	}
	return c.syncActive(ctx, key, job, pods)
}

// podsOf returns the pods job controls: those with a controller
// reference to it that its selector matches, and the orphans it matches,
// which it adopts with the tracking finalizer. Its pods that stopped
// matching are released and lose the finalizer.
func (c *JobController) podsOf(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil || job.Spec.Selector == nil || sel.Empty() {
		return nil, nil // a bad selector selects nothing; validation refuses it anyway
	}
	all, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	pc := &podClaim{
		client: c.client, lg: c.lg, gvk: jobKind, owner: &job.ObjectMeta, selector: sel,
		fetch: func(ctx context.Context) (metav1.Object, error) {
			return c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		},
		finalizer: JobTrackingFinalizer,
	}
	return pc.claim(ctx, all)
}

// enqueueMatching enqueues the Jobs in pod's namespace whose selector
// matches the orphan pod, for adoption.
func (c *JobController) enqueueMatching(pod *corev1.Pod) {
	if jobs, err := c.jobs.Jobs(pod.Namespace).List(labels.Everything()); err == nil {
		addSelecting(c.loop, jobs, func(j *batchv1.Job) *metav1.LabelSelector { return j.Spec.Selector }, pod.Labels)
	}
}

// releaseStrays removes the tracking finalizer from the pods in ns whose
// controller is a Job called name but not the one with uid (a Job deleted,
// or deleted and created again): nobody else would let them go. Only the
// pods sel matches are looked at.
func (c *JobController) releaseStrays(ctx context.Context, ns, name string, uid types.UID, sel labels.Selector) error {
	all, err := c.pods.Pods(ns).List(sel)
	if err != nil {
		return err
	}
	var strays []*corev1.Pod
	for _, p := range all {
		ref := metav1.GetControllerOf(p)
		if ref != nil && ref.Kind == jobKind.Kind && ref.Name == name && ref.UID != uid && hasTrackingFinalizer(p) {
			strays = append(strays, p)
		}
	}
	return c.removeFinalizers(ctx, strays)
}
