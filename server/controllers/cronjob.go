package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"

	"github.com/minik-dev/minik/server/registry"
)

// cronJobKind is the group/version/kind of a CronJob, as owner references
// name it.
var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// CronJobOptions tunes a CronJobController.
type CronJobOptions struct {
	// Recorder records the controller's events; nil records none.
	Recorder EventRecorder
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// CronJobController creates a Job for each time a CronJob's schedule
// comes due, as upstream does: the Job is named NAME-<scheduled time in
// minutes since the epoch>, so a run is created once even if the status
// write after it failed; after a pause (a restart, a suspension) only the
// most recent missed run is started, and only within
// startingDeadlineSeconds.
type CronJobController struct {
	workload
	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	opts     CronJobOptions
}

// NewCronJobController returns a CronJobController fed by the given
// informers. lg may be nil.
func NewCronJobController(client kubernetes.Interface, cronJobs batchinformers.CronJobInformer, jobs batchinformers.JobInformer, lg *slog.Logger, opts CronJobOptions) (*CronJobController, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &CronJobController{cronJobs: cronJobs.Lister(), jobs: jobs.Lister(), opts: opts}
	c.workload = newWorkload(client, "cronjob", opts.Recorder, lg, c.sync)
	if err := c.loop.watch(c.loop.own(cronJobs.Informer()), each(jobs.Informer(), c.jobChanged)); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CronJobController) jobChanged(obj any) {
	if job, ok := untombstone(obj).(*batchv1.Job); ok {
		if key, ok := controllerKeyOf(job, cronJobKind); ok {
			c.loop.add(key)
		}
	}
}

// sync reconciles one CronJob: its active list, its history, and the run
// that is due, if any.
func (c *CronJobController) sync(ctx context.Context, key string) error {
	cj, found, err := cached[*batchv1.CronJob](c.loop, key)
	if !found {
		return err
	}
	jobs, err := c.jobsOf(cj)
	if err != nil {
		return err
	}
	st := cj.Status.DeepCopy()
	if err := c.reconcileActive(ctx, cj, st, jobs); err != nil {
		return err
	}
	if err := c.cleanHistory(ctx, cj, jobs); err != nil {
		return err
	}
	if cj.DeletionTimestamp == nil && (cj.Spec.Suspend == nil || !*cj.Spec.Suspend) {
		if err := c.runDue(ctx, key, cj, st, jobs); err != nil {
			return err
		}
	}
	return c.writeStatus(ctx, cj, st)
}

// jobsOf returns the Jobs cj controls.
func (c *CronJobController) jobsOf(cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	all, err := c.jobs.Jobs(cj.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*batchv1.Job
	for _, j := range all {
		if ref := metav1.GetControllerOf(j); ref != nil && ref.UID == cj.UID {
			out = append(out, j)
		}
	}
	return out, nil
}

func (c *CronJobController) writeStatus(ctx context.Context, cj *batchv1.CronJob, st *batchv1.CronJobStatus) error {
	if apiequality.Semantic.DeepEqual(*st, cj.Status) {
		return nil
	}
	out := cj.DeepCopy()
	out.Status = *st
	_, err := c.client.BatchV1().CronJobs(cj.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	return err
}

// runDue starts the run that is due now, if there is one, following the
// concurrency policy, and syncs cj again at its next scheduled time.
func (c *CronJobController) runDue(ctx context.Context, key string, cj *batchv1.CronJob, st *batchv1.CronJobStatus, jobs []*batchv1.Job) error {
	now := c.opts.Now()
	sched, err := registry.ParseSchedule(cj.Spec.Schedule)
	if err != nil {
		c.rec.Eventf(cj, corev1.EventTypeWarning, "InvalidSchedule", "invalid schedule: %s : %v", cj.Spec.Schedule, err)
		return nil
	}
	loc, err := registry.LoadTimeZone(cj.Spec.TimeZone)
	if err != nil {
		c.rec.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %v", err)
		return nil
	}
	due := dueRun(sched, loc, earliestRun(cj, now), now)
	c.loop.addAfter(key, due.next.Sub(now)+100*time.Millisecond)
	if due.missed > maxMissedRuns {
		c.rec.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes",
			"too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", due.missed)
	}
	if due.scheduled.IsZero() {
		return nil
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && due.scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.rec.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", due.scheduled.UTC().Format(time.RFC1123Z))
		return nil
	}
	name := cronJobRunName(cj.Name, due.scheduled)
	for _, j := range jobs {
		if j.Name == name {
			// Created before the status said so (the write after it failed).
			st.LastScheduleTime = &metav1.Time{Time: due.scheduled}
			return nil
		}
	}
	// Starting a run acts on the active list: make sure it is not read
	// from a cache that lags behind the last run's writes.
	if err := c.confirmActive(ctx, cj, st); err != nil {
		return err
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(st.Active) > 0 {
			// lastScheduleTime stays: the run starts when the active one ends,
			// if that is still within the starting deadline.
			c.rec.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return nil
		}
	case batchv1.ReplaceConcurrent:
		if err := c.replaceActive(ctx, cj, st); err != nil {
			return err
		}
	}
	return c.createRun(ctx, cj, st, name, due.scheduled, loc)
}

// errStaleCache makes a sync retry when the cache is behind the API.
var errStaleCache = errors.New("cronjob: cache behind the API")

// confirmActive checks cj against the API and rebuilds st.Active from
// the Jobs the API lists, before a run is started.
func (c *CronJobController) confirmActive(ctx context.Context, cj *batchv1.CronJob, st *batchv1.CronJobStatus) error {
	fresh, err := c.client.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if fresh.ResourceVersion != cj.ResourceVersion {
		return fmt.Errorf("cronjob %q: %w", cj.Name, errStaleCache)
	}
	list, err := c.client.BatchV1().Jobs(cj.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var jobs []*batchv1.Job
	for i := range list.Items {
		if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.UID == cj.UID {
			jobs = append(jobs, &list.Items[i])
		}
	}
	return c.reconcileActive(ctx, cj, st, jobs)
}

// replaceActive deletes cj's active Jobs (with their pods), read from
// the API: a Job the cache does not show yet is deleted too.
func (c *CronJobController) replaceActive(ctx context.Context, cj *batchv1.CronJob, st *batchv1.CronJobStatus) error {
	for _, ref := range st.Active {
		j, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if j.UID != ref.UID {
			continue
		}
		if err := deleteJobWithPods(ctx, c.client, j, nil); err != nil {
			return err
		}
		c.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
	}
	st.Active = nil
	return nil
}

// createRun creates the Job of the run scheduled at t.
func (c *CronJobController) createRun(ctx context.Context, cj *batchv1.CronJob, st *batchv1.CronJobStatus, name string, t time.Time, loc *time.Location) error {
	job, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, jobFromCronJob(cj, name, t, loc), metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		existing, gerr := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		if ref := metav1.GetControllerOf(existing); ref == nil || ref.UID != cj.UID {
			c.rec.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
			return nil
		}
		job = existing
	case err != nil:
		c.rec.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return err
	default:
		c.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", job.Name)
	}
	st.LastScheduleTime = &metav1.Time{Time: t}
	if !jobFinished(job) && !activeHas(st, job) {
		st.Active = append(st.Active, jobRef(job))
	}
	return nil
}

// cronJobRunName is the name of the Job of the run scheduled at t.
func cronJobRunName(cronJob string, t time.Time) string {
	return fmt.Sprintf("%s-%d", cronJob, t.Unix()/60)
}

// jobFromCronJob builds the Job of cj's run scheduled at t.
func jobFromCronJob(cj *batchv1.CronJob, name string, t time.Time, loc *time.Location) *batchv1.Job {
	tmpl := cj.Spec.JobTemplate.DeepCopy()
	ann := tmpl.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	ann[batchv1.CronJobScheduledTimestampAnnotation] = t.In(loc).Format(time.RFC3339)
	isController := true
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cj.Namespace, Labels: tmpl.Labels, Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: cronJobKind.GroupVersion().String(), Kind: cronJobKind.Kind,
				Name: cj.Name, UID: cj.UID, Controller: &isController, BlockOwnerDeletion: &isController,
			}},
		},
		Spec: tmpl.Spec,
	}
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind: jobKind.Kind, APIVersion: jobKind.GroupVersion().String(),
		Namespace: j.Namespace, Name: j.Name, UID: j.UID, ResourceVersion: j.ResourceVersion,
	}
}

func activeHas(st *batchv1.CronJobStatus, j *batchv1.Job) bool {
	for _, r := range st.Active {
		if r.UID == j.UID {
			return true
		}
	}
	return false
}
