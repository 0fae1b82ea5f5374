package controllers

import (
	"context"
	"errors"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/server/registry"
)

// jobPods is a Job's pods sorted by what the controller does with them.
type jobPods struct {
	all         map[types.UID]*corev1.Pod
	active      []*corev1.Pod // running or waiting to run
	terminating []*corev1.Pod // being deleted, not finished
	ready       int32
	// Finished pods that still have the finalizer and are not yet in
	// status.uncountedTerminatedPods.
	newSucceeded, newFailed []*corev1.Pod
	// ignored are failed pods a podFailurePolicy Ignore rule matches:
	// released without being counted.
	ignored []*corev1.Pod
	// failJob is the message of a FailJob rule a new failure matched.
	failJob string
	// failedIndexes are the indexes the new failures fail (with a
	// backoff limit per index).
	failedIndexes []int32
}

// classify sorts job's pods.
func (c *JobController) classify(job *batchv1.Job, pods []*corev1.Pod) *jobPods {
	v := &jobPods{all: make(map[types.UID]*corev1.Pod, len(pods))}
	uncounted := uncountedSet(&job.Status)
	for _, p := range pods {
		v.all[p.UID] = p
		terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if p.DeletionTimestamp != nil && !terminal {
			v.terminating = append(v.terminating, p)
		}
		succeeded := p.Status.Phase == corev1.PodSucceeded
		if !succeeded && !podFailedForJob(p, job) {
			if p.DeletionTimestamp == nil {
				v.active = append(v.active, p)
				if podReady(p) {
					v.ready++
				}
			}
			continue
		}
		if !hasTrackingFinalizer(p) || c.releasing.has(p.UID) || uncounted[p.UID] {
			continue
		}
		if succeeded {
			v.newSucceeded = append(v.newSucceeded, p)
			continue
		}
		action, msg := matchFailurePolicy(job.Spec.PodFailurePolicy, p)
		switch action {
		case batchv1.PodFailurePolicyActionIgnore:
			v.ignored = append(v.ignored, p)
			continue
		case batchv1.PodFailurePolicyActionFailJob:
			if v.failJob == "" {
				v.failJob = msg
			}
		}
		if failsIndex(job, p, action) {
			if ix := completionIndex(p, *job.Spec.Completions); ix >= 0 {
				v.failedIndexes = append(v.failedIndexes, int32(ix))
			}
		}
		v.newFailed = append(v.newFailed, p)
	}
	return v
}

// podFailedForJob reports whether p counts as a failed pod of job: it
// failed, or (unless the Job replaces only failed pods) it is being
// deleted before it succeeded, since such a pod may never reach Failed.
func podFailedForJob(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if r := job.Spec.PodReplacementPolicy; (r != nil && *r == batchv1.Failed) || job.Spec.PodFailurePolicy != nil {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

func uncountedSet(st *batchv1.JobStatus) map[types.UID]bool {
	m := map[types.UID]bool{}
	if u := st.UncountedTerminatedPods; u != nil {
		for _, uid := range u.Succeeded {
			m[uid] = true
		}
		for _, uid := range u.Failed {
			m[uid] = true
		}
	}
	return m
}

func indexed(job *batchv1.Job) bool {
	m := job.Spec.CompletionMode
	return m != nil && *m == batchv1.IndexedCompletion
}

// stage records the newly finished pods in the Job's
// uncountedTerminatedPods (and an Indexed Job's succeeded indexes in
// completedIndexes, its failed ones in failedIndexes) before their
// finalizers go, and returns the Job as written.
func (c *JobController) stage(ctx context.Context, job *batchv1.Job, v *jobPods) (*batchv1.Job, error) {
	if len(v.newSucceeded)+len(v.newFailed) == 0 {
		return job, nil
	}
	out := job.DeepCopy()
	st := &out.Status
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	u := st.UncountedTerminatedPods
	for _, p := range v.newSucceeded {
		u.Succeeded = append(u.Succeeded, p.UID)
	}
	for _, p := range v.newFailed {
		u.Failed = append(u.Failed, p.UID)
	}
	if indexed(job) {
		var idx []int32
		for _, p := range v.newSucceeded {
			if ix := completionIndex(p, *job.Spec.Completions); ix >= 0 {
				idx = append(idx, int32(ix))
			}
		}
		st.CompletedIndexes = withIndexes(st.CompletedIndexes, idx)
		done, _ := registry.ParseIndexes(st.CompletedIndexes, -1)
		st.Succeeded = int32(done.Len())
	}
	if len(v.failedIndexes) > 0 {
		st.FailedIndexes = ptrTo(withIndexes(ptrValue(st.FailedIndexes), v.failedIndexes))
	}
	return c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
}

// toRelease returns the pods whose finalizer can go now: the pods the
// Job has recorded as uncounted, ignored failures, and every pod of a
// Job being deleted.
func (c *JobController) toRelease(job *batchv1.Job, v *jobPods) []*corev1.Pod {
	uncounted := uncountedSet(&job.Status)
	var out []*corev1.Pod
	for uid, p := range v.all {
		if hasTrackingFinalizer(p) && !c.releasing.has(uid) &&
			(uncounted[uid] || job.DeletionTimestamp != nil) {
			out = append(out, p)
		}
	}
	return append(out, v.ignored...)
}

// flush moves the uncounted pods whose finalizer is gone into the counts
// of st (an Indexed Job counts successes by completedIndexes instead).
func (c *JobController) flush(job *batchv1.Job, st *batchv1.JobStatus, v *jobPods) {
	u := st.UncountedTerminatedPods
	st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	if u == nil {
		return
	}
	released := func(uid types.UID) bool {
		p, ok := v.all[uid]
		return !ok || !hasTrackingFinalizer(p) || c.releasing.has(uid)
	}
	keep := st.UncountedTerminatedPods
	for _, uid := range u.Succeeded {
		switch {
		case !released(uid):
			keep.Succeeded = append(keep.Succeeded, uid)
		case !indexed(job):
			st.Succeeded++
		}
	}
	for _, uid := range u.Failed {
		if released(uid) {
			st.Failed++
		} else {
			keep.Failed = append(keep.Failed, uid)
		}
	}
}

// syncActive runs a Job that has not finished.
func (c *JobController) syncActive(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	now := c.opts.Now()
	v := c.classify(job, pods)
	job, err := c.stage(ctx, job, v)
	if err != nil {
		return err
	}
	if err := c.removeFinalizers(ctx, c.toRelease(job, v)); err != nil {
		return err
	}
	if !perIndex(job) {
		c.backoff.record(key, len(v.newSucceeded), finishTimes(v.newFailed, now))
	}
	st := job.Status.DeepCopy()
	if perIndex(job) && st.FailedIndexes == nil {
		st.FailedIndexes = ptrTo("")
	}
	c.flush(job, st, v)
	deleted, manageErr := c.decide(ctx, key, job, st, v, now)
	st.Active = int32(len(v.active) - deleted)
	st.Ready = ptrTo(v.ready)
	st.Terminating = ptrTo(int32(len(v.terminating) + deleted))
	return errors.Join(manageErr, c.writeStatus(ctx, job, st))
}

func ptrTo[T any](v T) *T { return &v }

// writeStatus writes st as job's status when it changed.
func (c *JobController) writeStatus(ctx context.Context, job *batchv1.Job, st *batchv1.JobStatus) error {
	if apiequality.Semantic.DeepEqual(*st, job.Status) {
		return nil
	}
	out := job.DeepCopy()
	out.Status = *st
	_, err := c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	return err
}

// decide sets conditions and start time in st and creates or deletes
// pods; it returns how many pods it deleted.
func (c *JobController) decide(ctx context.Context, key string, job *batchv1.Job, st *batchv1.JobStatus, v *jobPods, now time.Time) (int, error) {
	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	if job.DeletionTimestamp != nil {
		return 0, nil
	}
	c.setInterimCondition(job, st, v, now)
	winding := findJobCondition(st, batchv1.JobFailureTarget) != nil || findJobCondition(st, batchv1.JobSuccessCriteriaMet) != nil
	switch {
	case winding:
		n, err := c.deleteAll(ctx, key, job, v.active)
		if len(v.active) == 0 && len(v.terminating) == 0 && uncountedEmpty(st) {
			c.setTerminalCondition(job, st, now)
		}
		return n, err
	case suspended:
		if setJobCondition(st, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now) {
			c.rec.Eventf(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
		}
		st.StartTime = nil
		return c.deleteAll(ctx, key, job, v.active)
	}
	if cond := findJobCondition(st, batchv1.JobSuspended); cond != nil && cond.Status == corev1.ConditionTrue {
		setJobCondition(st, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
		c.rec.Eventf(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
		st.StartTime = nil
	}
	if st.StartTime == nil {
		st.StartTime = &metav1.Time{Time: now}
	}
	if d := job.Spec.ActiveDeadlineSeconds; d != nil {
		c.loop.addAfter(key, st.StartTime.Add(time.Duration(*d)*time.Second).Sub(now))
	}
	if !c.exp.satisfied(key) {
		return 0, nil
	}
	if indexed(job) {
		return c.manageIndexed(ctx, key, job, st, v, now)
	}
	return c.manageNonIndexed(ctx, key, job, st, v, now)
}

// deleteAll deletes active pods, at most a burst of them.
func (c *JobController) deleteAll(ctx context.Context, key string, job *batchv1.Job, active []*corev1.Pod) (int, error) {
	if !c.exp.satisfied(key) || len(active) == 0 {
		return 0, nil
	}
	victims := active[:min(len(active), c.opts.BurstReplicas)]
	return len(victims), c.deletePods(ctx, key, job, victims)
}

func uncountedEmpty(st *batchv1.JobStatus) bool {
	u := st.UncountedTerminatedPods
	return u == nil || len(u.Succeeded)+len(u.Failed) == 0
}

// counts returns the successes and failures st records, uncounted ones
// included.
func counts(job *batchv1.Job, st *batchv1.JobStatus) (succeeded, failed int32) {
	succeeded, failed = st.Succeeded, st.Failed
	if u := st.UncountedTerminatedPods; u != nil {
		if !indexed(job) {
			succeeded += int32(len(u.Succeeded))
		}
		failed += int32(len(u.Failed))
	}
	return succeeded, failed
}

// manageNonIndexed keeps min(parallelism, completions left) pods active;
// a Job without completions starts no pod once one has succeeded.
func (c *JobController) manageNonIndexed(ctx context.Context, key string, job *batchv1.Job, st *batchv1.JobStatus, v *jobPods, now time.Time) (int, error) {
	succeeded, _ := counts(job, st)
	want := *job.Spec.Parallelism
	switch {
	case job.Spec.Completions != nil:
		want = min(want, *job.Spec.Completions-succeeded)
	case succeeded > 0:
		want = min(want, int32(len(v.active)))
	}
	want = max(want, 0)
	active := int32(len(v.active))
	if active > want {
		victims := podsToDelete(v.active, min(int(active-want), c.opts.BurstReplicas))
		return len(victims), c.deletePods(ctx, key, job, victims)
	}
	n := want - active
	if replaceOnlyFailed(job) {
		n -= int32(len(v.terminating))
	}
	if n <= 0 || c.backingOff(key, now) {
		return 0, nil
	}
	return 0, c.createPods(ctx, key, job, min(int(n), c.opts.BurstReplicas), nil)
}

func replaceOnlyFailed(job *batchv1.Job) bool {
	r := job.Spec.PodReplacementPolicy
	return r != nil && *r == batchv1.Failed
}

// backingOff reports whether new pods must wait after recent failures,
// and if so syncs the Job again when the wait is over.
func (c *JobController) backingOff(key string, now time.Time) bool {
	wait := c.backoff.remaining(key, now)
	if wait > 0 {
		c.loop.addAfter(key, wait)
	}
	return wait > 0
}

// manageIndexed keeps one active pod for each index neither succeeded
// nor failed, up to parallelism, lowest indexes first; it deletes
// duplicates and pods of succeeded, failed or unknown indexes.
func (c *JobController) manageIndexed(ctx context.Context, key string, job *batchv1.Job, st *batchv1.JobStatus, v *jobPods, now time.Time) (int, error) {
	completions := *job.Spec.Completions
	done, _ := registry.ParseIndexes(st.CompletedIndexes, -1)
	failed := failedIndexes(st)
	over := func(ix int) bool { return done.Has(int32(ix)) || failed.Has(int32(ix)) }
	byIndex := map[int]*corev1.Pod{}
	var surplus []*corev1.Pod
	for _, p := range v.active {
		ix := completionIndex(p, completions)
		if ix < 0 || over(ix) || byIndex[ix] != nil {
			surplus = append(surplus, p)
			continue
		}
		byIndex[ix] = p
	}
	want := max(min(*job.Spec.Parallelism, completions-int32(done.Len()+failed.Len())), 0)
	if extra := len(byIndex) - int(want); extra > 0 {
		keys := make([]int, 0, len(byIndex))
		for ix := range byIndex {
			keys = append(keys, ix)
		}
		slices.Sort(keys)
		for _, ix := range keys[len(keys)-extra:] {
			surplus = append(surplus, byIndex[ix])
			delete(byIndex, ix)
		}
	}
	if len(surplus) > 0 {
		surplus = surplus[:min(len(surplus), c.opts.BurstReplicas)]
		return len(surplus), c.deletePods(ctx, key, job, surplus)
	}
	blocked := map[int]bool{}
	if replaceOnlyFailed(job) {
		for _, p := range v.terminating {
			blocked[completionIndex(p, completions)] = true
		}
	}
	skip := func(ix int) bool { return over(ix) || blocked[ix] }
	n := min(int(want)-len(byIndex), c.opts.BurstReplicas)
	start, wait := indexesToStart(job, v, byIndex, skip, n, now)
	if wait > 0 {
		c.loop.addAfter(key, wait)
	}
	if len(start) == 0 || (!perIndex(job) && c.backingOff(key, now)) {
		return 0, nil
	}
	return 0, c.createPods(ctx, key, job, len(start), start)
}
