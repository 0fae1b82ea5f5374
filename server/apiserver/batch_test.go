package apiserver

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func batchPodTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "main", Image: "busybox:1.36"}},
	}}
}

// TestBatchOverHTTP creates Jobs and CronJobs through client-go: the
// served objects carry the defaults and generated selector, and bad
// input is a 422 naming the field.
func TestBatchOverHTTP(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	jobs := ts.client.BatchV1().Jobs("default")
	job, err := jobs.Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi"},
		Spec:       batchv1.JobSpec{Template: batchPodTemplate()},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	if sel := job.Spec.Selector; sel == nil || sel.MatchLabels["batch.kubernetes.io/controller-uid"] != string(job.UID) ||
		*job.Spec.BackoffLimit != 6 || *job.Spec.Completions != 1 {
		t.Errorf("served job spec = %+v, want generated selector and defaults", job.Spec)
	}
	_, err = jobs.Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "neg"},
		Spec:       batchv1.JobSpec{Parallelism: ptrTo[int32](-1), Template: batchPodTemplate()},
	}, metav1.CreateOptions{})
	invalidField(t, "job with negative parallelism", err, "spec.parallelism")

	cjs := ts.client.BatchV1().CronJobs("default")
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: batchv1.CronJobSpec{Schedule: "every day", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: batchPodTemplate()},
		}},
	}
	_, err = cjs.Create(ctx, cj, metav1.CreateOptions{})
	invalidField(t, "cronjob with an invalid schedule", err, "spec.schedule")
	cj.Spec.Schedule, cj.Spec.TimeZone = "@daily", ptrTo("Nowhere/Special")
	_, err = cjs.Create(ctx, cj, metav1.CreateOptions{})
	invalidField(t, "cronjob with an unknown time zone", err, "spec.timeZone")
	if _, err := ts.client.Discovery().ServerResourcesForGroupVersion("batch/v1"); err != nil {
		t.Errorf("discovery of batch/v1: %v", err)
	}
}
