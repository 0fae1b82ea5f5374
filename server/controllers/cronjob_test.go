package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/registry"
)

func TestDueRun(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		schedule       string
		loc            *time.Location
		earliest, now  string
		scheduled, nxt string // scheduled "" = none due
		missed         int
	}{
		{"*/15 * * * *", time.UTC, "2026-01-01T12:00:00Z", "2026-01-01T12:40:00Z", "2026-01-01T12:30:00Z", "2026-01-01T12:45:00Z", 2},
		{"@hourly", time.UTC, "2026-01-01T12:00:00Z", "2026-01-01T12:59:59Z", "", "2026-01-01T13:00:00Z", 0},
		{"@daily", time.UTC, "2026-01-01T12:00:00Z", "2026-01-03T01:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", 2},
		{"0 9 * * *", ny, "2026-01-01T00:00:00Z", "2026-01-01T15:00:00Z", "2026-01-01T14:00:00Z", "2026-01-02T14:00:00Z", 1},
		{"* * * * *", time.UTC, "2026-01-01T00:00:00Z", "2026-01-01T03:20:30Z", "2026-01-01T03:20:00Z", "2026-01-01T03:21:00Z", 200},
	}
	for _, tc := range tests {
		t.Run(tc.schedule, func(t *testing.T) {
			sched, err := registry.ParseSchedule(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			r := dueRun(sched, tc.loc, at(tc.earliest), at(tc.now))
			var want time.Time
			if tc.scheduled != "" {
				want = at(tc.scheduled)
			}
			if !r.scheduled.Equal(want) || !r.next.Equal(at(tc.nxt)) || r.missed != tc.missed {
				t.Errorf("dueRun = %v, next %v, missed %d; want %v, %v, %d", r.scheduled, r.next, r.missed, want, tc.nxt, tc.missed)
			}
		})
	}
	if got := cronJobRunName("nightly", at("2026-01-01T00:01:00Z")); got != "nightly-29453761" {
		t.Errorf("cronJobRunName = %q, want nightly-29453761", got)
	}
}

// eventLog records the reasons of events, in order.
type eventLog struct {
	mu      sync.Mutex
	reasons []string
}

func (l *eventLog) Eventf(_ runtime.Object, _, reason, _ string, _ ...any) {
	l.mu.Lock()
	l.reasons = append(l.reasons, reason)
	l.mu.Unlock()
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.reasons)
}

func (l *eventLog) count(reason string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reasons {
		if r == reason {
			n++
		}
	}
	return n
}

// startCronJobs runs a CronJobController on e with clock, and the other
// controllers given.
func startCronJobs(e *env, clock *fakeClock, more ...func(context.Context) error) *eventLog {
	e.t.Helper()
	log := &eventLog{}
	c, err := NewCronJobController(e.client, e.factory.Batch().V1().CronJobs(), e.factory.Batch().V1().Jobs(), e.lg, CronJobOptions{Now: clock.Now, Recorder: log})
	if err != nil {
		e.t.Fatalf("NewCronJobController: %v", err)
	}
	e.run(append(more, func(ctx context.Context) error { return c.Run(ctx, 1) })...)
	return log
}

func (e *env) createCronJob(name string, mutate func(*batchv1.CronJob)) *batchv1.CronJob {
	e.t.Helper()
	spec := testPodSpec()
	spec.RestartPolicy = corev1.RestartPolicyNever
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}},
		},
	}
	if mutate != nil {
		mutate(cj)
	}
	out, err := e.client.BatchV1().CronJobs("default").Create(e.ctx, cj, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create cronjob %q: %v", name, err)
	}
	return out
}

// touchCronJob makes the controller sync the CronJob again.
func (e *env) touchCronJob(name string) {
	e.t.Helper()
	cjs := e.client.BatchV1().CronJobs("default")
	e.eventually("touch cronjob "+name, func() error {
		cj, err := cjs.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cj.Annotations == nil {
			cj.Annotations = map[string]string{}
		}
		cj.Annotations["test/touch"] = strconv.FormatInt(time.Now().UnixNano(), 10)
		_, err = cjs.Update(e.ctx, cj, metav1.UpdateOptions{})
		return err
	})
}

// cronJobRuns returns the names of the Jobs in default, sorted.
func (e *env) cronJobRuns() []string {
	e.t.Helper()
	list, err := e.client.BatchV1().Jobs("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list jobs: %v", err)
	}
	var names []string
	for _, j := range list.Items {
		names = append(names, j.Name)
	}
	slices.Sort(names)
	return names
}

// waitRuns waits until the Jobs in default are exactly want.
func (e *env) waitRuns(want ...string) {
	e.t.Helper()
	slices.Sort(want)
	e.eventually(fmt.Sprintf("jobs %v", want), func() error {
		if got := e.cronJobRuns(); !slices.Equal(got, want) {
			return fmt.Errorf("jobs %v", got)
		}
		return nil
	})
}

// completeJob marks a Job complete, as the job controller would.
func (e *env) completeJob(name string) {
	e.t.Helper()
	jobs := e.client.BatchV1().Jobs("default")
	e.eventually("complete "+name, func() error {
		j, err := jobs.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		j.Status.StartTime, j.Status.CompletionTime, j.Status.Succeeded = &now, &now, 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached"},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached"},
		}
		_, err = jobs.UpdateStatus(e.ctx, j, metav1.UpdateOptions{})
		return err
	})
}

// minuteClock returns a fake clock at the start of the minute after the
// CronJob's creation, and that minute.
func minuteClock(cj *batchv1.CronJob) (*fakeClock, time.Time) {
	first := cj.CreationTimestamp.Time.Truncate(time.Minute).Add(time.Minute)
	return &fakeClock{t: first.Add(time.Second)}, first
}

func TestCronJobAllowAndHistory(t *testing.T) {
	e := newEnv(t)
	cj := e.createCronJob("tick", func(c *batchv1.CronJob) { c.Spec.SuccessfulJobsHistoryLimit = ptr[int32](1) })
	clock, first := minuteClock(cj)
	startCronJobs(e, clock)
	e.touchCronJob("tick")
	run1 := cronJobRunName("tick", first)
	e.waitRuns(run1)
	j, err := e.client.BatchV1().Jobs("default").Get(e.ctx, run1, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != first.In(time.Local).Format(time.RFC3339) {
		t.Errorf("scheduled-timestamp = %q, want %s", got, first.Format(time.RFC3339))
	}
	if ref := metav1.GetControllerOf(j); ref == nil || ref.Kind != "CronJob" || ref.UID != cj.UID {
		t.Errorf("controller = %+v, want CronJob tick", ref)
	}
	e.eventually("status of the first run", func() error {
		got, err := e.client.BatchV1().CronJobs("default").Get(e.ctx, "tick", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(got.Status.Active) != 1 || got.Status.LastScheduleTime == nil || !got.Status.LastScheduleTime.Time.Equal(first) {
			return fmt.Errorf("status = %+v, want one active job scheduled at %v", got.Status, first)
		}
		return nil
	})
	// Allow: the next run starts while the first is still active.
	clock.Advance(time.Minute)
	e.touchCronJob("tick")
	run2 := cronJobRunName("tick", first.Add(time.Minute))
	e.waitRuns(run1, run2)
	// History: of two completed runs only the newest is kept.
	e.completeJob(run1)
	e.completeJob(run2)
	e.waitRuns(run2)
	e.eventually("status after completion", func() error {
		cj, err := e.client.BatchV1().CronJobs("default").Get(e.ctx, "tick", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(cj.Status.Active) != 0 || cj.Status.LastSuccessfulTime == nil {
			return fmt.Errorf("status %+v", cj.Status)
		}
		return nil
	})
}

func TestCronJobForbid(t *testing.T) {
	e := newEnv(t)
	cj := e.createCronJob("solo", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent })
	clock, first := minuteClock(cj)
	log := startCronJobs(e, clock)
	e.touchCronJob("solo")
	run1 := cronJobRunName("solo", first)
	e.waitRuns(run1)
	clock.Advance(time.Minute)
	e.touchCronJob("solo")
	e.eventually("JobAlreadyActive event", func() error {
		if log.count("JobAlreadyActive") == 0 {
			return fmt.Errorf("events %v", log)
		}
		return nil
	})
	if got := e.cronJobRuns(); len(got) != 1 {
		t.Fatalf("jobs %v while one is active under Forbid, want only %s", got, run1)
	}
	// Once the active run ends, the run still due starts.
	e.completeJob(run1)
	e.waitRuns(run1, cronJobRunName("solo", first.Add(time.Minute)))
}

func TestCronJobReplace(t *testing.T) {
	e := newEnv(t)
	cj := e.createCronJob("swap", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent })
	clock, first := minuteClock(cj)
	startCronJobs(e, clock)
	e.touchCronJob("swap")
	e.waitRuns(cronJobRunName("swap", first))
	clock.Advance(time.Minute)
	e.touchCronJob("swap")
	e.waitRuns(cronJobRunName("swap", first.Add(time.Minute)))
}

func TestCronJobMissedRunsAfterRestart(t *testing.T) {
	e := newEnv(t)
	cj := e.createCronJob("late", nil)
	clock, first := minuteClock(cj)
	// The controller was down for 200 minutes: one catch-up run, for the
	// most recent time, and an event about the missed ones.
	clock.Advance(200 * time.Minute)
	log := startCronJobs(e, clock)
	e.touchCronJob("late")
	e.waitRuns(cronJobRunName("late", first.Add(200*time.Minute)))
	e.eventually("TooManyMissedTimes event", func() error {
		if log.count("TooManyMissedTimes") == 0 {
			return fmt.Errorf("events %v", log)
		}
		return nil
	})
}

func TestCronJobSuspended(t *testing.T) {
	e := newEnv(t)
	cj := e.createCronJob("paused", func(c *batchv1.CronJob) { c.Spec.Suspend = ptr(true) })
	clock, first := minuteClock(cj)
	log := startCronJobs(e, clock)
	clock.Advance(time.Minute)
	e.touchCronJob("paused")
	cjs := e.client.BatchV1().CronJobs("default")
	e.eventually("resume", func() error {
		c, err := cjs.Get(e.ctx, "paused", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Spec.Suspend = ptr(false)
		_, err = cjs.Update(e.ctx, c, metav1.UpdateOptions{})
		return err
	})
	// Resumed: the most recent missed time runs, once.
	e.waitRuns(cronJobRunName("paused", first.Add(time.Minute)))
	e.eventually("SuccessfulCreate event", func() error {
		if n := log.count("SuccessfulCreate"); n != 1 {
			return fmt.Errorf("%d SuccessfulCreate events, want 1", n)
		}
		return nil
	})
}

// TestCronJobDeletionCascades deletes a CronJob: the garbage collector
// deletes its Jobs.
func TestCronJobDeletionCascades(t *testing.T) {
	e := newEnv(t)
	cj := e.createCronJob("gone", nil)
	clock, first := minuteClock(cj)
	startCronJobs(e, clock, newGC(e))
	e.touchCronJob("gone")
	e.waitRuns(cronJobRunName("gone", first))
	if err := e.client.BatchV1().CronJobs("default").Delete(e.ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitRuns()
}
