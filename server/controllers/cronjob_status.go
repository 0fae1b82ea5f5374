package controllers

import (
	"context"
	"slices"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxMissedRuns is how many missed runs upstream tolerates silently; more
// are reported with a TooManyMissedTimes event.
const maxMissedRuns = 100

// maxScheduleSteps bounds the walk over missed runs (a year of a
// once-a-minute schedule is about half of it).
const maxScheduleSteps = 1 << 20

// run is where a CronJob stands in its schedule at some time.
type run struct {
	scheduled time.Time // the most recent run due; zero when none is
	missed    int       // runs due since the earliest time, the started one included
	next      time.Time // the first run after now
}

// dueRun walks sched (in loc) from earliest (exclusive) to now: the most
// recent time due is the one to start; the earlier ones are missed.
func dueRun(sched cron.Schedule, loc *time.Location, earliest, now time.Time) run {
	var r run
	t := sched.Next(earliest.In(loc))
	for !t.IsZero() && !t.After(now) && r.missed < maxScheduleSteps {
		r.scheduled, r.missed = t, r.missed+1
		t = sched.Next(t)
	}
	r.next = t
	return r
}

// earliestRun is the time after which runs of cj count as due: its last
// run (else its creation), but no earlier than startingDeadlineSeconds
// before now.
func earliestRun(cj *batchv1.CronJob, now time.Time) time.Time {
	t := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		t = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if floor := now.Add(-time.Duration(*d) * time.Second); floor.After(t) {
			t = floor
		}
	}
	return t
}

// reconcileActive makes st.Active list exactly cj's unfinished Jobs, and
// sets lastSuccessfulTime from its completed ones. A reference the cache
// does not show is checked with the API, since a Job just created may
// not be cached yet.
func (c *CronJobController) reconcileActive(ctx context.Context, cj *batchv1.CronJob, st *batchv1.CronJobStatus, jobs []*batchv1.Job) error {
	byUID := map[string]*batchv1.Job{}
	for _, j := range jobs {
		byUID[string(j.UID)] = j
	}
	var active []corev1.ObjectReference
	for _, ref := range st.Active {
		j, ok := byUID[string(ref.UID)]
		if !ok {
			fresh, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				continue
			case err != nil:
				return err
			case fresh.UID != ref.UID:
				continue
			}
			j = fresh
		}
		if jobFinished(j) {
			c.rec.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %s", j.Name, finishedType(j))
			continue
		}
		active = append(active, ref)
	}
	st.Active = active
	for _, j := range jobs {
		if !jobFinished(j) && !activeHas(st, j) {
			st.Active = append(st.Active, jobRef(j))
		}
		if finishedType(j) == batchv1.JobComplete && j.Status.CompletionTime != nil &&
			(st.LastSuccessfulTime == nil || j.Status.CompletionTime.After(st.LastSuccessfulTime.Time)) {
			st.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
		}
	}
	return nil
}

// finishedType is Complete or Failed for a finished Job, else "".
func finishedType(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// cleanHistory deletes the oldest finished Jobs beyond the history
// limits: successfulJobsHistoryLimit for completed ones,
// failedJobsHistoryLimit for failed ones.
func (c *CronJobController) cleanHistory(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) error {
	var done, failed []*batchv1.Job
	for _, j := range jobs {
		switch finishedType(j) {
		case batchv1.JobComplete:
			done = append(done, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	var victims []*batchv1.Job
	for _, set := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{done, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if set.limit == nil || len(set.jobs) <= int(*set.limit) {
			continue
		}
		slices.SortFunc(set.jobs, func(a, b *batchv1.Job) int {
			if c := jobStart(a).Compare(jobStart(b)); c != 0 {
				return c
			}
			return cmpString(a.Name, b.Name) // NAME-<minute>: older runs first
		})
		victims = append(victims, set.jobs[:len(set.jobs)-int(*set.limit)]...)
	}
	for _, j := range victims {
		if err := deleteJobWithPods(ctx, c.client, j, nil); err != nil {
			return err
		}
		c.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
	}
	return nil
}

// jobStart orders a CronJob's Jobs: by start time, else creation time.
func jobStart(j *batchv1.Job) time.Time {
	if j.Status.StartTime != nil {
		return j.Status.StartTime.Time
	}
	return j.CreationTimestamp.Time
}
