package registry

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testCronJob() *batchv1.CronJob {
	j := testJob()
	c := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: j.Spec},
		},
	}
	cronJobResource.PrepareForCreate(c)
	return c
}

func TestCronJobDefaults(t *testing.T) {
	c := testCronJob()
	s := c.Spec
	if s.ConcurrencyPolicy != batchv1.AllowConcurrent || *s.Suspend || *s.SuccessfulJobsHistoryLimit != 3 || *s.FailedJobsHistoryLimit != 1 {
		t.Errorf("defaults = %s suspend %v history %d/%d; want Allow, false, 3/1", s.ConcurrencyPolicy, *s.Suspend, *s.SuccessfulJobsHistoryLimit, *s.FailedJobsHistoryLimit)
	}
}

func TestValidateCronJob(t *testing.T) {
	runValidation(t, cronJobResource, testCronJob, []validationCase[*batchv1.CronJob]{
		{name: "valid"},
		{name: "macro", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "@hourly" }},
		{name: "time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Europe/Berlin") }},
		{name: "bad schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" },
			want: []string{errKey(invalid, "spec.schedule")}},
		{name: "six fields", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "0 0 * * * *" },
			want: []string{errKey(invalid, "spec.schedule")}},
		{name: "no schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "" },
			want: []string{errKey(required, "spec.schedule")}},
		{name: "TZ in schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" },
			want: []string{errKey(invalid, "spec.schedule")}},
		{name: "unknown time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Mars/Olympus") },
			want: []string{errKey(invalid, "spec.timeZone")}},
		{name: "local time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Local") },
			want: []string{errKey(invalid, "spec.timeZone")}},
		{name: "bad concurrency", mutate: func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" },
			want: []string{errKey(notSupported, "spec.concurrencyPolicy")}},
		{name: "negative deadline", mutate: func(c *batchv1.CronJob) { c.Spec.StartingDeadlineSeconds = ptrTo[int64](-1) },
			want: []string{errKey(invalid, "spec.startingDeadlineSeconds")}},
		{name: "negative history", mutate: func(c *batchv1.CronJob) { c.Spec.FailedJobsHistoryLimit = ptrTo[int32](-1) },
			want: []string{errKey(invalid, "spec.failedJobsHistoryLimit")}},
		{name: "negative parallelism in template", mutate: func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.Parallelism = ptrTo[int32](-1) },
			want: []string{errKey(invalid, "spec.jobTemplate.spec.parallelism")}},
		{name: "long name", mutate: func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) },
			want: []string{errKey(invalid, "metadata.name")}},
	})
}

func TestCronJobRow(t *testing.T) {
	c := stored(cronJobResource, testCronJob())
	last := ago(5 * 60 * 1e9)
	c.Status.LastScheduleTime = &last
	c.Status.Active = make([]corev1.ObjectReference, 1)
	row := cronJobRow(c, testNow)
	if row[1] != "*/5 * * * *" || row[2] != "<none>" || row[3] != false || row[4] != int64(1) || row[5] != "5m" {
		t.Errorf("row = %v", row)
	}
}
