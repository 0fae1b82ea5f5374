package controllers

import (
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/server/registry"
)

// An Indexed Job with spec.backoffLimitPerIndex retries each index on its
// own: a failed pod of an index is replaced (after a delay growing with
// the index's failures) until the index has failed more than the limit,
// or a FailIndex rule of the pod failure policy matched; the index is
// then failed for good and listed in status.failedIndexes, in the same
// status write that records the pod as uncounted, so that a restart
// neither loses nor repeats it. The Job fails once more indexes failed
// than spec.maxFailedIndexes allows, or once every index has either
// succeeded or failed with some failed.
//
// The failures of an index so far travel with its pods, in the
// batch.kubernetes.io/job-index-failure-count annotation, as upstream
// does: a replacement carries the count of the pod it replaces plus one.

// Upstream's reasons and messages for a Job that failed by its indexes.
const (
	reasonMaxFailedIndexesExceeded = "MaxFailedIndexesExceeded"
	reasonFailedIndexes            = "FailedIndexes"
	msgMaxFailedIndexesExceeded    = "Job has exceeded the specified maximal number of failed indexes"
	msgFailedIndexes               = "Job has failed indexes"
)

func perIndex(job *batchv1.Job) bool {
	return indexed(job) && job.Spec.BackoffLimitPerIndex != nil
}

// indexFailureCount is the failures of p's index before p.
func indexFailureCount(p *corev1.Pod) int32 {
	n, err := strconv.ParseInt(p.Annotations[JobIndexFailureCountKey], 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int32(n)
}

// failsIndex reports whether the failure of p, counted under action (of
// the pod failure policy, "" when none matched), fails its index.
func failsIndex(job *batchv1.Job, p *corev1.Pod, action batchv1.PodFailurePolicyAction) bool {
	if !perIndex(job) {
		return false
	}
	return action == batchv1.PodFailurePolicyActionFailIndex || indexFailureCount(p)+1 > *job.Spec.BackoffLimitPerIndex
}

// withIndexes returns the interval list s with the indexes more added.
func withIndexes(s string, more []int32) string {
	set, _ := registry.ParseIndexes(s, -1)
	all := append(expandIndexes(set), more...)
	return registry.IndexesOf(all).String()
}

func expandIndexes(set registry.Indexes) []int32 {
	var out []int32
	for _, r := range set {
		for i := r.First; i <= r.Last; i++ {
			out = append(out, i)
		}
	}
	return out
}

// failedIndexes returns the indexes st lists as failed.
func failedIndexes(st *batchv1.JobStatus) registry.Indexes {
	if st.FailedIndexes == nil {
		return nil
	}
	set, _ := registry.ParseIndexes(*st.FailedIndexes, -1)
	return set
}

// indexFailure is the latest failure of one index.
type indexFailure struct {
	failures int32     // the index's failures, this one included
	at       time.Time // when the pod failed
}

// lastIndexFailures returns, by index, the latest failure among the
// failed pods of a Job with a backoff limit per index. A failure an
// Ignore rule matched does not add to the count.
func lastIndexFailures(job *batchv1.Job, pods map[types.UID]*corev1.Pod, now time.Time) map[int]indexFailure {
	out := map[int]indexFailure{}
	for _, p := range pods {
		ix := completionIndex(p, *job.Spec.Completions)
		if ix < 0 || !podFailedForJob(p, job) {
			continue
		}
		n := indexFailureCount(p)
		if action, _ := matchFailurePolicy(job.Spec.PodFailurePolicy, p); action != batchv1.PodFailurePolicyActionIgnore {
			n++
		}
		at := podFinishTime(p, now)
		if last, ok := out[ix]; !ok || n > last.failures || (n == last.failures && at.After(last.at)) {
			out[ix] = indexFailure{failures: n, at: at}
		}
	}
	return out
}

// indexesToStart returns up to n indexes, lowest first, that have no
// active pod (active), are not done, failed or blocked, and whose retry
// delay is over; with the earliest time one still waiting may start.
func indexesToStart(job *batchv1.Job, v *jobPods, active map[int]*corev1.Pod, skip func(int) bool, n int, now time.Time) ([]jobIndex, time.Duration) {
	var last map[int]indexFailure
	if perIndex(job) {
		last = lastIndexFailures(job, v.all, now)
	}
	var out []jobIndex
	var wait time.Duration
	for ix := 0; ix < int(*job.Spec.Completions) && len(out) < n; ix++ {
		if active[ix] != nil || skip(ix) {
			continue
		}
		f := last[ix]
		if f.failures > 0 {
			if left := f.at.Add(jobBackoff(int(f.failures))).Sub(now); left > 0 {
				if wait == 0 || left < wait {
					wait = left
				}
				continue
			}
		}
		out = append(out, jobIndex{index: ix, failures: f.failures})
	}
	return out, wait
}

// podFinishTime is when the failed pod p finished: its last container's
// termination, else when it was deleted, else when it stopped being
// ready, else its creation; never after now. Unlike finishTimes it does
// not fall back to now, so that a delay counted from it ends.
func podFinishTime(p *corev1.Pod, now time.Time) time.Time {
	var t time.Time
	for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	if t.IsZero() && p.DeletionTimestamp != nil {
		t = p.DeletionTimestamp.Time
	}
	if t.IsZero() {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
				t = c.LastTransitionTime.Time
			}
		}
	}
	if t.IsZero() {
		t = p.CreationTimestamp.Time
	}
	if t.After(now) {
		return now
	}
	return t
}
