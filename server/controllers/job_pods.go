package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Names upstream gives the Job's pod metadata.
const (
	// JobTrackingFinalizer keeps a Job's finished pod until the Job has
	// recorded it.
	JobTrackingFinalizer = "batch.kubernetes.io/job-tracking"
	// JobCompletionIndexKey is the annotation and label with an Indexed
	// Job's pod index.
	JobCompletionIndexKey = "batch.kubernetes.io/job-completion-index"
	// JobIndexFailureCountKey is the annotation with the failures of the
	// pod's index before it, in a Job with a backoff limit per index.
	JobIndexFailureCountKey = "batch.kubernetes.io/job-index-failure-count"
	// jobCompletionIndexEnv is the environment variable with the index.
	jobCompletionIndexEnv = "JOB_COMPLETION_INDEX"
)

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, JobTrackingFinalizer)
}

// uidSet is a set of pod uids, safe for concurrent use.
type uidSet struct {
	mu sync.Mutex // guards m
	m  map[types.UID]bool
}

func newUIDSet() *uidSet { return &uidSet{m: map[types.UID]bool{}} }

func (s *uidSet) add(uid types.UID) {
	s.mu.Lock()
	s.m[uid] = true
	s.mu.Unlock()
}

func (s *uidSet) remove(uid types.UID) {
	s.mu.Lock()
	delete(s.m, uid)
	s.mu.Unlock()
}

func (s *uidSet) has(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[uid]
}

// removeFinalizers takes the tracking finalizer off pods. The patch
// deletes only that finalizer and is bound to the pod's uid, so it
// neither races with other writers of the pod nor touches a new pod of
// the same name.
func (c *JobController) removeFinalizers(ctx context.Context, pods []*corev1.Pod) error {
	return parallel(len(pods), func(i int) error {
		p := pods[i]
		c.releasing.add(p.UID)
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"uid":                                 p.UID,
			"$deleteFromPrimitiveList/finalizers": []string{JobTrackingFinalizer},
		}})
		if err != nil {
			return err
		}
		_, err = c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.releasing.remove(p.UID)
			return err
		}
		return nil
	})
}

// jobIndex is a completion index to create a pod for, and how many
// times it failed so far.
type jobIndex struct {
	index    int
	failures int32
}

// createPods creates pods for job: one for each of indexes (Indexed), or
// n pods without index (indexes nil), with a slow start (see slowStart).
func (c *JobController) createPods(ctx context.Context, key string, job *batchv1.Job, n int, indexes []jobIndex) error {
	c.exp.expect(key, n, nil)
	return slowStart(c.exp, key, n, func(i int) error {
		ix := jobIndex{index: -1}
		if indexes != nil {
			ix = indexes[i]
		}
		return c.createPod(ctx, key, job, ix)
	})
}

func (c *JobController) createPod(ctx context.Context, key string, job *batchv1.Job, ix jobIndex) error {
	out, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, podFromJob(job, ix), metav1.CreateOptions{})
	if err != nil {
		c.exp.creationObserved(key)
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		if ctx.Err() == nil {
			c.rec.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	c.rec.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", out.Name)
	return nil
}

// podFromJob builds a pod of job's template with the tracking finalizer;
// an index ≥ 0 makes it the pod of that completion index: named and
// hostnamed NAME-INDEX, with the index in an annotation, a label and the
// JOB_COMPLETION_INDEX variable, and with a backoff limit per index, the
// index's failures so far in an annotation.
func podFromJob(job *batchv1.Job, jix jobIndex) *corev1.Pod {
	index := jix.index
	t := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    job.Name + "-",
			Namespace:       job.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      append(t.Finalizers, JobTrackingFinalizer),
			OwnerReferences: []metav1.OwnerReference{jobControllerRef(job)},
		},
		Spec: t.Spec,
	}
	if index < 0 {
		return pod
	}
	ix := strconv.Itoa(index)
	pod.GenerateName = fmt.Sprintf("%s-%s-", job.Name, ix)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Annotations[JobCompletionIndexKey] = ix
	pod.Labels[JobCompletionIndexKey] = ix
	if job.Spec.BackoffLimitPerIndex != nil {
		pod.Annotations[JobIndexFailureCountKey] = strconv.Itoa(int(jix.failures))
	}
	if pod.Spec.Hostname == "" {
		pod.Spec.Hostname = fmt.Sprintf("%s-%s", job.Name, ix)
	}
	env := corev1.EnvVar{Name: jobCompletionIndexEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		APIVersion: "v1", FieldPath: fmt.Sprintf("metadata.labels['%s']", JobCompletionIndexKey),
	}}}
	for i := range pod.Spec.InitContainers {
		pod.Spec.InitContainers[i].Env = append(pod.Spec.InitContainers[i].Env, env)
	}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Env = append(pod.Spec.Containers[i].Env, env)
	}
	return pod
}

func jobControllerRef(job *batchv1.Job) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion: jobKind.GroupVersion().String(), Kind: jobKind.Kind,
		Name: job.Name, UID: job.UID, Controller: &t, BlockOwnerDeletion: &t,
	}
}

// deletePods deletes pods of job (bound to their uids), expecting to see
// each deletion.
func (c *JobController) deletePods(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	if len(pods) == 0 {
		return nil
	}
	keys := make([]string, len(pods))
	for i, p := range pods {
		keys[i] = p.Namespace + "/" + p.Name
	}
	c.exp.expect(key, 0, keys)
	return parallel(len(pods), func(i int) error {
		p := pods[i]
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &p.UID},
		})
		if err != nil {
			c.exp.deletionObserved(key, keys[i])
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return nil
			}
			return err
		}
		c.rec.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		return nil
	})
}

// completionIndex returns pod's completion index, or -1 when it has none
// below completions.
func completionIndex(pod *corev1.Pod, completions int32) int {
	v, ok := pod.Annotations[JobCompletionIndexKey]
	if !ok {
		return -1
	}
	ix, err := strconv.Atoi(v)
	if err != nil || ix < 0 || ix >= int(completions) {
		return -1
	}
	return ix
}
