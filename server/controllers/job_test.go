package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

// startJobs runs a JobController on e with clock, and the other
// controllers given (they share e's informers, so they start together).
func startJobs(e *env, clock *fakeClock, more ...func(context.Context) error) *JobController {
	e.t.Helper()
	c, err := NewJobController(e.client, e.factory.Batch().V1().Jobs(), e.factory.Core().V1().Pods(), e.lg, JobOptions{Now: clock.Now})
	if err != nil {
		e.t.Fatalf("NewJobController: %v", err)
	}
	e.run(append(more, func(ctx context.Context) error { return c.Run(ctx, 2) })...)
	return c
}

// newGC returns a garbage collector on e's informers, to start with them.
func newGC(e *env) func(context.Context) error {
	e.t.Helper()
	gc, err := NewGarbageCollector(e.client, e.factory, e.lg, GarbageCollectorOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return func(ctx context.Context) error { return gc.Run(ctx, 1) }
}

func (e *env) createJob(name string, mutate func(*batchv1.Job)) *batchv1.Job {
	e.t.Helper()
	spec := testPodSpec()
	spec.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}},
	}
	if mutate != nil {
		mutate(job)
	}
	out, err := e.client.BatchV1().Jobs("default").Create(e.ctx, job, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create job %q: %v", name, err)
	}
	return out
}

func (e *env) getJob(name string) *batchv1.Job {
	e.t.Helper()
	job, err := e.client.BatchV1().Jobs("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get job %q: %v", name, err)
	}
	return job
}

// updateJob changes a Job's spec or metadata, retrying on conflicts. A
// change of an annotation alone makes the controller sync the Job.
func (e *env) updateJob(name string, mutate func(*batchv1.Job)) {
	e.t.Helper()
	jobs := e.client.BatchV1().Jobs("default")
	e.eventually("update job "+name, func() error {
		job, err := jobs.Get(e.ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil // gone: nothing left to sync
		}
		if err != nil {
			return err
		}
		mutate(job)
		_, err = jobs.Update(e.ctx, job, metav1.UpdateOptions{})
		return err
	})
}

// touchJob makes the controller sync the Job again (after the test
// moved the clock).
func (e *env) touchJob(name string) {
	e.updateJob(name, func(j *batchv1.Job) {
		if j.Annotations == nil {
			j.Annotations = map[string]string{}
		}
		j.Annotations["test/touch"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	})
}

// jobPods returns the pods of the Job in default (by its name label),
// in name order.
func (e *env) jobPods(name string) []corev1.Pod {
	e.t.Helper()
	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	slices.SortFunc(list.Items, func(a, b corev1.Pod) int { return cmpString(a.Name, b.Name) })
	return list.Items
}

func runningPods(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// waitRunning waits until the Job has exactly n running pods.
func (e *env) waitRunning(job string, n int) []corev1.Pod {
	e.t.Helper()
	var pods []corev1.Pod
	e.eventually(fmt.Sprintf("%d running pods of %s", n, job), func() error {
		pods = runningPods(e.jobPods(job))
		if len(pods) != n {
			return fmt.Errorf("%d running pods", len(pods))
		}
		return nil
	})
	return pods
}

// finishPod sets a pod's phase to Succeeded or Failed with the given
// exit code.
func (e *env) finishPod(name string, phase corev1.PodPhase, exitCode int32) {
	e.t.Helper()
	e.finishPodAt(name, phase, exitCode, time.Now())
}

// finishPodAt is finishPod with the containers' finish time.
func (e *env) finishPodAt(name string, phase corev1.PodPhase, exitCode int32, at time.Time) {
	e.t.Helper()
	pods := e.client.CoreV1().Pods("default")
	e.eventually("finish pod "+name, func() error {
		pod, err := pods.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod.Status.Phase = phase
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "busybox", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, FinishedAt: metav1.NewTime(at)},
		}}}
		_, err = pods.UpdateStatus(e.ctx, pod, metav1.UpdateOptions{})
		return err
	})
}

// waitJob waits until cond accepts the Job.
func (e *env) waitJob(name, what string, cond func(*batchv1.Job) error) *batchv1.Job {
	e.t.Helper()
	var job *batchv1.Job
	e.eventually(name+" "+what, func() error {
		job = e.getJob(name)
		return cond(job)
	})
	return job
}

func hasCondition(job *batchv1.Job, t batchv1.JobConditionType, reason string) error {
	c := findJobCondition(&job.Status, t)
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != reason {
		return fmt.Errorf("conditions %+v, want %s with reason %s", job.Status.Conditions, t, reason)
	}
	return nil
}

func TestJobRunsToCompletion(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	e.createJob("work", func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = ptr[int32](5), ptr[int32](2) })
	created := map[string]bool{}
	for done := 0; done < 5; {
		want := min(2, 5-done)
		for _, p := range e.waitRunning("work", want) {
			if !slices.Contains(p.Finalizers, JobTrackingFinalizer) {
				t.Errorf("pod %s has finalizers %v, want %s", p.Name, p.Finalizers, JobTrackingFinalizer)
			}
			if ref := metav1.GetControllerOf(&p); ref == nil || ref.Kind != "Job" || ref.Name != "work" {
				t.Errorf("pod %s controller = %+v, want Job work", p.Name, ref)
			}
			created[p.Name] = true
		}
		// Finish one pod at a time: parallelism may never be exceeded.
		p := e.waitRunning("work", want)[0]
		e.finishPod(p.Name, corev1.PodSucceeded, 0)
		done++
		e.waitJob("work", "counts the success", func(j *batchv1.Job) error {
			if j.Status.Succeeded != int32(done) {
				return fmt.Errorf("succeeded %d", j.Status.Succeeded)
			}
			return nil
		})
	}
	job := e.waitJob("work", "completes", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobComplete, "CompletionsReached") })
	if err := hasCondition(job, batchv1.JobSuccessCriteriaMet, "CompletionsReached"); err != nil {
		t.Error(err)
	}
	if job.Status.CompletionTime == nil || job.Status.StartTime == nil || job.Status.Succeeded != 5 || job.Status.Failed != 0 || job.Status.Active != 0 {
		t.Errorf("status = %+v, want 5 succeeded, start and completion times", job.Status)
	}
	if len(created) != 5 {
		t.Errorf("created pods %v, want 5", created)
	}
	e.eventually("finalizers removed", func() error {
		for _, p := range e.jobPods("work") {
			if len(p.Finalizers) > 0 {
				return fmt.Errorf("pod %s finalizers %v", p.Name, p.Finalizers)
			}
		}
		return nil
	})
}

func TestJobIndexed(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	startJobs(e, clock)
	e.createJob("idx", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr[int32](3), ptr[int32](3)
		j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	})
	pods := e.waitRunning("idx", 3)
	var got []string
	for _, p := range pods {
		ix := p.Annotations[JobCompletionIndexKey]
		got = append(got, ix)
		if p.Labels[JobCompletionIndexKey] != ix || p.Spec.Hostname != "idx-"+ix {
			t.Errorf("pod %s: label %q hostname %q, want index %s", p.Name, p.Labels[JobCompletionIndexKey], p.Spec.Hostname, ix)
		}
		env := p.Spec.Containers[0].Env
		if len(env) == 0 || env[len(env)-1].Name != "JOB_COMPLETION_INDEX" {
			t.Errorf("pod %s env = %+v, want JOB_COMPLETION_INDEX", p.Name, env)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"0", "1", "2"}, got); diff != "" {
		t.Fatalf("indexes (-want +got):\n%s", diff)
	}
	byIndex := map[string]string{}
	for _, p := range pods {
		byIndex[p.Annotations[JobCompletionIndexKey]] = p.Name
	}
	// Index 1 fails once: it gets a new pod, after the backoff delay.
	e.finishPod(byIndex["1"], corev1.PodFailed, 1)
	e.waitJob("idx", "counts the failure", func(j *batchv1.Job) error {
		if j.Status.Failed != 1 {
			return fmt.Errorf("failed %d", j.Status.Failed)
		}
		return nil
	})
	clock.Advance(jobBackoffBase)
	e.touchJob("idx")
	pods = e.waitRunning("idx", 3)
	for _, p := range pods {
		byIndex[p.Annotations[JobCompletionIndexKey]] = p.Name
	}
	for _, ix := range []string{"0", "1", "2"} {
		e.finishPod(byIndex[ix], corev1.PodSucceeded, 0)
	}
	job := e.waitJob("idx", "completes", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobComplete, "CompletionsReached") })
	if job.Status.CompletedIndexes != "0-2" || job.Status.Succeeded != 3 || job.Status.Failed != 1 {
		t.Errorf("status: completedIndexes %q succeeded %d failed %d; want 0-2, 3, 1", job.Status.CompletedIndexes, job.Status.Succeeded, job.Status.Failed)
	}
	if n := len(e.jobPods("idx")); n != 4 {
		t.Errorf("%d pods, want 4 (three indexes, one retry)", n)
	}
}

func TestJobBackoffLimit(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	startJobs(e, clock)
	e.createJob("flaky", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr[int32](1) })
	p := e.waitRunning("flaky", 1)[0]
	e.finishPod(p.Name, corev1.PodFailed, 1)
	e.waitJob("flaky", "counts the failure", func(j *batchv1.Job) error {
		if j.Status.Failed != 1 || !uncountedEmpty(&j.Status) {
			return fmt.Errorf("failed %d, uncounted %+v", j.Status.Failed, j.Status.UncountedTerminatedPods)
		}
		return nil
	})
	// The clock has not moved: the replacement waits for the delay, and
	// the sync that counted the failure did not create it.
	if n := len(runningPods(e.jobPods("flaky"))); n != 0 {
		t.Fatalf("%d running pods during the backoff delay, want 0", n)
	}
	clock.Advance(jobBackoffBase)
	e.touchJob("flaky")
	p = e.waitRunning("flaky", 1)[0]
	e.finishPod(p.Name, corev1.PodFailed, 1)
	job := e.waitJob("flaky", "fails", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobFailed, "BackoffLimitExceeded") })
	if err := hasCondition(job, batchv1.JobFailureTarget, "BackoffLimitExceeded"); err != nil {
		t.Error(err)
	}
	if job.Status.Failed != 2 || job.Status.CompletionTime != nil {
		t.Errorf("failed %d, completionTime %v; want 2 and none", job.Status.Failed, job.Status.CompletionTime)
	}
}

func TestJobBackoffDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 6: 320 * time.Second, 7: 6 * time.Minute, 40: 6 * time.Minute} {
		if got := jobBackoff(n); got != want {
			t.Errorf("jobBackoff(%d) = %v, want %v", n, got, want)
		}
	}
	b := newBackoffStore()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.record("ns/j", 0, []time.Time{at, at.Add(time.Second)})
	if got := b.remaining("ns/j", at.Add(time.Second)); got != 20*time.Second {
		t.Errorf("remaining after two failures = %v, want 20s", got)
	}
	b.record("ns/j", 1, nil)
	if got := b.remaining("ns/j", at); got != 0 {
		t.Errorf("remaining after a success = %v, want 0", got)
	}
}

func TestJobSuspendResume(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	e.createJob("later", func(j *batchv1.Job) {
		j.Spec.Suspend = ptr(true)
		j.Spec.Parallelism = ptr[int32](2)
		j.Spec.Completions = ptr[int32](4)
	})
	job := e.waitJob("later", "is suspended", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobSuspended, "JobSuspended") })
	if job.Status.StartTime != nil || len(e.jobPods("later")) != 0 {
		t.Fatalf("suspended job: startTime %v, %d pods; want none", job.Status.StartTime, len(e.jobPods("later")))
	}
	e.updateJob("later", func(j *batchv1.Job) { j.Spec.Suspend = ptr(false) })
	e.waitRunning("later", 2)
	job = e.waitJob("later", "is resumed", func(j *batchv1.Job) error {
		c := findJobCondition(&j.Status, batchv1.JobSuspended)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "JobResumed" || j.Status.StartTime == nil {
			return fmt.Errorf("conditions %+v, startTime %v", j.Status.Conditions, j.Status.StartTime)
		}
		return nil
	})
	e.updateJob("later", func(j *batchv1.Job) { j.Spec.Suspend = ptr(true) })
	e.waitRunning("later", 0)
	e.waitJob("later", "is suspended again", func(j *batchv1.Job) error {
		if j.Status.Active != 0 {
			return fmt.Errorf("active %d", j.Status.Active)
		}
		return hasCondition(j, batchv1.JobSuspended, "JobSuspended")
	})
}

func TestJobDeadline(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	startJobs(e, clock)
	e.createJob("slow", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr[int64](30) })
	e.waitRunning("slow", 1)
	e.waitJob("slow", "starts", func(j *batchv1.Job) error {
		if j.Status.StartTime == nil {
			return fmt.Errorf("no startTime")
		}
		return nil
	})
	clock.Advance(31 * time.Second)
	e.touchJob("slow")
	job := e.waitJob("slow", "fails", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobFailed, "DeadlineExceeded") })
	if job.Status.Active != 0 {
		t.Errorf("active = %d, want 0", job.Status.Active)
	}
	e.eventually("pod deleted", func() error {
		if pods := e.jobPods("slow"); len(pods) != 0 {
			p := pods[0]
			return fmt.Errorf("%d pods left: %s phase %q deleted %v finalizers %v", len(pods), p.Name, p.Status.Phase, p.DeletionTimestamp, p.Finalizers)
		}
		return nil
	})
}

func TestJobPodFailurePolicy(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	e.createJob("strict", func(j *batchv1.Job) {
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}},
			{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		}}
	})
	p := e.waitRunning("strict", 1)[0]
	e.finishPod(p.Name, corev1.PodFailed, 3) // ignored: replaced at once, not counted
	p2 := e.waitRunning("strict", 1)[0]
	if p2.Name == p.Name {
		t.Fatalf("pod %s not replaced", p.Name)
	}
	e.finishPod(p2.Name, corev1.PodFailed, 42)
	job := e.waitJob("strict", "fails", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobFailed, "PodFailurePolicy") })
	if job.Status.Failed != 1 {
		t.Errorf("failed = %d, want 1 (the ignored failure not counted)", job.Status.Failed)
	}
}

func TestJobTTLAfterFinished(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	startJobs(e, clock)
	e.createJob("brief", func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr[int32](60) })
	p := e.waitRunning("brief", 1)[0]
	e.finishPod(p.Name, corev1.PodSucceeded, 0)
	e.waitJob("brief", "completes", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobComplete, "CompletionsReached") })
	clock.Advance(61 * time.Second)
	e.touchJob("brief")
	e.eventually("job and pods deleted", func() error {
		_, err := e.client.BatchV1().Jobs("default").Get(e.ctx, "brief", metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("job still there")
		}
		if n := len(e.jobPods("brief")); n != 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
}

// TestJobCountsOnceAcrossRestart starts the controller on the state a
// previous controller may have left at any point of its tracking, and
// checks that each pod is counted exactly once.
func TestJobCountsOnceAcrossRestart(t *testing.T) {
	e := newEnv(t)
	job := e.createJob("resume", func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = ptr[int32](10), ptr[int32](0) })
	mk := func(name string, finalizer bool, phase corev1.PodPhase) types.UID {
		p := e.createPod(name, job.Spec.Template.Labels, func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{jobControllerRef(job)}
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			if finalizer {
				p.Finalizers = []string{JobTrackingFinalizer}
			}
		})
		e.finishPod(name, phase, 0)
		return p.UID
	}
	ok := corev1.PodSucceeded
	staged := mk("staged", true, ok)                      // recorded as uncounted, finalizer not yet removed
	released := mk("released", false, ok)                 // recorded, finalizer removed, counts not yet written
	mk("counted", false, ok)                              // counted before the restart
	mk("new", true, ok)                                   // finished while no controller ran
	failed := mk("failed-staged", true, corev1.PodFailed) // a failure recorded as uncounted
	job = e.getJob("resume")
	job.Status.Succeeded = 1
	job.Status.StartTime = &metav1.Time{Time: time.Now()}
	job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{
		Succeeded: []types.UID{staged, released}, Failed: []types.UID{failed},
	}
	if _, err := e.client.BatchV1().Jobs("default").UpdateStatus(e.ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("write status: %v", err)
	}
	c := startJobs(e, newFakeClock())
	want := func(j *batchv1.Job) error {
		if j.Status.Succeeded != 4 || j.Status.Failed != 1 || !uncountedEmpty(&j.Status) {
			return fmt.Errorf("succeeded %d failed %d uncounted %+v; want 4, 1, none", j.Status.Succeeded, j.Status.Failed, j.Status.UncountedTerminatedPods)
		}
		return nil
	}
	job = e.waitJob("resume", "counts every pod once", want)
	e.eventually("finalizers removed", func() error {
		for _, p := range e.jobPods("resume") {
			if len(p.Finalizers) > 0 {
				return fmt.Errorf("pod %s finalizers %v", p.Name, p.Finalizers)
			}
		}
		return nil
	})
	// More syncs, once the cache shows the final state, change nothing.
	e.eventually("cache up to date", func() error {
		cached, err := c.jobs.Jobs("default").Get("resume")
		if err != nil || cached.ResourceVersion != e.getJob("resume").ResourceVersion {
			return fmt.Errorf("cache behind")
		}
		return nil
	})
	for range 3 {
		if err := c.sync(e.ctx, "default/resume"); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	if err := want(e.getJob("resume")); err != nil {
		t.Error(err)
	}
}

// TestJobDeletionCascades deletes a running Job: its pods lose the
// tracking finalizer and the garbage collector deletes them.
func TestJobDeletionCascades(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock(), newGC(e))
	e.createJob("doomed", func(j *batchv1.Job) { j.Spec.Parallelism = ptr[int32](2) })
	e.waitRunning("doomed", 2)
	policy := metav1.DeletePropagationBackground
	if err := e.client.BatchV1().Jobs("default").Delete(e.ctx, "doomed", metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
	e.eventually("pods deleted", func() error {
		if pods := e.jobPods("doomed"); len(pods) != 0 {
			return fmt.Errorf("%d pods left, finalizers %v", len(pods), pods[0].Finalizers)
		}
		return nil
	})
}
