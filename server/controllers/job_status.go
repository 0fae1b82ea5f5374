package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/server/registry"
)

// Upstream's condition reasons and messages.
const (
	reasonBackoffLimitExceeded = "BackoffLimitExceeded"
	reasonDeadlineExceeded     = "DeadlineExceeded"
	reasonPodFailurePolicy     = "PodFailurePolicy"
	reasonCompletionsReached   = "CompletionsReached"
	reasonSuccessPolicy        = "SuccessPolicy"
)

// The delay before a failed pod is replaced: 10 s after the first
// failure, doubling with each further one, capped at 6 minutes.
const (
	jobBackoffBase = 10 * time.Second
	jobBackoffMax  = 6 * time.Minute
)

// jobBackoff is the delay after n consecutive failures.
func jobBackoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := jobBackoffBase
	for i := 1; i < n && d < jobBackoffMax; i++ {
		d *= 2
	}
	return min(d, jobBackoffMax)
}

// backoffStore remembers, per Job key, the failures since the last
// success and when the last one happened. Safe for concurrent use.
type backoffStore struct {
	mu sync.Mutex // guards m
	m  map[string]backoffRecord
}

type backoffRecord struct {
	failures int
	last     time.Time
}

func newBackoffStore() *backoffStore { return &backoffStore{m: map[string]backoffRecord{}} }

// record adds the newly counted pods of a Job: a success resets the
// count, each failure adds one.
func (b *backoffStore) record(key string, succeeded int, failedAt []time.Time) {
	if succeeded == 0 && len(failedAt) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.m[key]
	if succeeded > 0 {
		r = backoffRecord{}
	}
	for _, t := range failedAt {
		r.failures++
		if t.After(r.last) {
			r.last = t
		}
	}
	b.m[key] = r
}

// remaining is how long new pods of the Job must still wait at now.
func (b *backoffStore) remaining(key string, now time.Time) time.Duration {
	b.mu.Lock()
	r := b.m[key]
	b.mu.Unlock()
	if r.failures == 0 {
		return 0
	}
	return r.last.Add(jobBackoff(r.failures)).Sub(now)
}

func (b *backoffStore) forget(key string) {
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
}

// finishTimes returns when each pod finished: its last container's
// termination, else now.
func finishTimes(pods []*corev1.Pod, now time.Time) []time.Time {
	out := make([]time.Time, len(pods))
	for i, p := range pods {
		var t time.Time
		for _, cs := range p.Status.ContainerStatuses {
			if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
				t = term.FinishedAt.Time
			}
		}
		if t.IsZero() || t.After(now) {
			t = now
		}
		out[i] = t
	}
	return out
}

// matchFailurePolicy returns the action of the first rule of policy that
// the failed pod p matches and the message upstream gives it; "" when
// none does.
func matchFailurePolicy(policy *batchv1.PodFailurePolicy, p *corev1.Pod) (batchv1.PodFailurePolicyAction, string) {
	if policy == nil || p.Status.Phase != corev1.PodFailed {
		return "", ""
	}
	statuses := slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
	for i, r := range policy.Rules {
		if r.OnExitCodes != nil {
			if cs, code, ok := matchExitCodes(r.OnExitCodes, statuses); ok {
				return r.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
					cs, p.Namespace, p.Name, code, r.Action, i)
			}
		}
		for _, pat := range r.OnPodConditions {
			for _, c := range p.Status.Conditions {
				if c.Type == pat.Type && c.Status == pat.Status {
					return r.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d", p.Namespace, p.Name, c.Type, r.Action, i)
				}
			}
		}
	}
	return "", ""
}

func matchExitCodes(req *batchv1.PodFailurePolicyOnExitCodesRequirement, statuses []corev1.ContainerStatus) (string, int32, bool) {
	for _, cs := range statuses {
		term := cs.State.Terminated
		if term == nil || term.ExitCode == 0 || (req.ContainerName != nil && *req.ContainerName != cs.Name) {
			continue
		}
		in := slices.Contains(req.Values, term.ExitCode)
		if in == (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) {
			return cs.Name, term.ExitCode, true
		}
	}
	return "", 0, false
}

func findJobCondition(st *batchv1.JobStatus, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setJobCondition sets condition t in st and reports whether it changed
// status (the transition time moves only then).
func setJobCondition(st *batchv1.JobStatus, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) bool {
	ts := metav1.NewTime(now)
	if c := findJobCondition(st, t); c != nil {
		changed := c.Status != status
		if changed {
			c.LastTransitionTime = ts
		}
		if changed || c.Reason != reason || c.Message != msg {
			c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, msg, ts
		}
		return changed
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{
		Type: t, Status: status, Reason: reason, Message: msg, LastProbeTime: ts, LastTransitionTime: ts,
	})
	return true
}

// jobFinished reports whether job has a true Complete or Failed
// condition.
func jobFinished(job *batchv1.Job) bool { return finishedType(job) != "" }

// setInterimCondition adds FailureTarget or SuccessCriteriaMet when the
// Job has just failed or succeeded; its pods are then wound down before
// the terminal condition follows.
func (c *JobController) setInterimCondition(job *batchv1.Job, st *batchv1.JobStatus, v *jobPods, now time.Time) {
	if findJobCondition(st, batchv1.JobFailureTarget) != nil || findJobCondition(st, batchv1.JobSuccessCriteriaMet) != nil {
		return
	}
	if reason, msg := jobFailure(job, st, v, now); reason != "" {
		setJobCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reason, msg, now)
		return
	}
	if reason, msg := jobSuccess(job, st, v); reason != "" {
		setJobCondition(st, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reason, msg, now)
	}
}

// jobFailure returns why the Job has failed, if it has.
func jobFailure(job *batchv1.Job, st *batchv1.JobStatus, v *jobPods, now time.Time) (reason, msg string) {
	if v.failJob != "" {
		return reasonPodFailurePolicy, v.failJob
	}
	if perIndex(job) {
		failed := failedIndexes(st).Len()
		done, _ := registry.ParseIndexes(st.CompletedIndexes, -1)
		switch limit := job.Spec.MaxFailedIndexes; {
		case limit != nil && int32(failed) > *limit:
			return reasonMaxFailedIndexesExceeded, msgMaxFailedIndexesExceeded
		case failed > 0 && int32(failed+done.Len()) >= *job.Spec.Completions:
			return reasonFailedIndexes, msgFailedIndexes
		}
	}
	_, failed := counts(job, st)
	if job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
		for _, p := range v.active {
			for _, cs := range p.Status.ContainerStatuses {
				failed += cs.RestartCount
			}
		}
	}
	if job.Spec.BackoffLimit != nil && failed > *job.Spec.BackoffLimit {
		return reasonBackoffLimitExceeded, "Job has reached the specified backoff limit"
	}
	if d := job.Spec.ActiveDeadlineSeconds; d != nil && st.StartTime != nil &&
		!now.Before(st.StartTime.Add(time.Duration(*d)*time.Second)) {
		return reasonDeadlineExceeded, "Job was active longer than specified deadline"
	}
	return "", ""
}

// jobSuccess returns why the Job has succeeded, if it has.
func jobSuccess(job *batchv1.Job, st *batchv1.JobStatus, v *jobPods) (reason, msg string) {
	succeeded, _ := counts(job, st)
	if indexed(job) {
		done, _ := registry.ParseIndexes(st.CompletedIndexes, -1)
		if i, ok := successPolicyMet(job.Spec.SuccessPolicy, done); ok {
			return reasonSuccessPolicy, fmt.Sprintf("Matched rules at index %d", i)
		}
		succeeded = int32(done.Len())
	}
	reached := "Reached expected number of succeeded pods"
	switch {
	case job.Spec.Completions != nil && succeeded >= *job.Spec.Completions:
		return reasonCompletionsReached, reached
	case job.Spec.Completions == nil && succeeded > 0 && len(v.active) == 0:
		return reasonCompletionsReached, reached
	}
	return "", ""
}

// successPolicyMet returns the index of the first rule of p that the
// succeeded indexes done satisfy.
func successPolicyMet(p *batchv1.SuccessPolicy, done registry.Indexes) (int, bool) {
	if p == nil {
		return 0, false
	}
	for i, r := range p.Rules {
		matched := done.Len()
		if r.SucceededIndexes != nil {
			want, err := registry.ParseIndexes(*r.SucceededIndexes, -1)
			if err != nil {
				continue
			}
			matched = 0
			for _, rg := range want {
				for ix := rg.First; ix <= rg.Last; ix++ {
					if done.Has(ix) {
						matched++
					}
				}
			}
			if r.SucceededCount == nil && matched < want.Len() {
				continue
			}
		}
		if r.SucceededCount != nil && int32(matched) < *r.SucceededCount {
			continue
		}
		return i, true
	}
	return 0, false
}

// setTerminalCondition turns the interim condition into Failed or
// Complete once no pod of the Job runs any more.
func (c *JobController) setTerminalCondition(job *batchv1.Job, st *batchv1.JobStatus, now time.Time) {
	if ft := findJobCondition(st, batchv1.JobFailureTarget); ft != nil {
		setJobCondition(st, batchv1.JobFailed, corev1.ConditionTrue, ft.Reason, ft.Message, now)
		c.rec.Eventf(job, corev1.EventTypeWarning, ft.Reason, "%s", ft.Message)
		return
	}
	sc := findJobCondition(st, batchv1.JobSuccessCriteriaMet)
	setJobCondition(st, batchv1.JobComplete, corev1.ConditionTrue, sc.Reason, sc.Message, now)
	st.CompletionTime = &metav1.Time{Time: now}
	c.rec.Eventf(job, corev1.EventTypeNormal, "Completed", "Job completed")
}

// syncFinished lets go of a finished Job's pods and, after its
// ttlSecondsAfterFinished, deletes the Job and its pods.
func (c *JobController) syncFinished(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	v := c.classify(job, pods)
	var hold []*corev1.Pod
	for _, p := range pods {
		if hasTrackingFinalizer(p) && !c.releasing.has(p.UID) {
			hold = append(hold, p)
		}
	}
	if err := c.removeFinalizers(ctx, hold); err != nil {
		return err
	}
	if !uncountedEmpty(&job.Status) {
		st := job.Status.DeepCopy()
		c.flush(job, st, v)
		return c.writeStatus(ctx, job, st)
	}
	ttl := job.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return nil
	}
	expiry := jobFinishTime(job).Add(time.Duration(*ttl) * time.Second)
	if wait := expiry.Sub(c.opts.Now()); wait > 0 {
		c.loop.addAfter(key, wait)
		return nil
	}
	return c.deleteExpired(ctx, job, pods)
}

// jobFinishTime is when the Job got its Complete or Failed condition.
func jobFinishTime(job *batchv1.Job) time.Time {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return job.CreationTimestamp.Time
}

// deleteExpired deletes a Job whose time to live is over, with its pods.
func (c *JobController) deleteExpired(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) error {
	err := deleteJobWithPods(ctx, c.client, job, pods)
	if err == nil {
		c.lg.Info("deleted finished job after its ttl", "job", job.Namespace+"/"+job.Name)
	}
	return err
}

// deleteJobWithPods deletes job and its pods (listed from the API when
// pods is nil). The pods are deleted here, not left to a collector, so
// that none outlives its Job; deletions are bound to uids.
func deleteJobWithPods(ctx context.Context, client kubernetes.Interface, job *batchv1.Job, pods []*corev1.Pod) error {
	if pods == nil {
		sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
		if err != nil {
			return err
		}
		list, err := client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return err
		}
		for i := range list.Items {
			if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.UID == job.UID {
				pods = append(pods, &list.Items[i])
			}
		}
	}
	if err := parallel(len(pods), func(i int) error {
		p := pods[i]
		err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if apierrors.IsConflict(err) {
			return nil
		}
		return ignoreNotFound(err)
	}); err != nil {
		return err
	}
	policy := metav1.DeletePropagationBackground
	err := client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
		PropagationPolicy: &policy,
	})
	if apierrors.IsConflict(err) {
		return nil
	}
	return ignoreNotFound(err)
}
