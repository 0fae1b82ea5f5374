package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testJob() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "6b9f0d5c-0000-4000-8000-0000000000aa"},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pi"}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "pi", Image: "perl"}},
				},
			},
		},
	}
}

// createdJob is testJob after create preparation.
func createdJob() *batchv1.Job {
	j := testJob()
	jobResource.PrepareForCreate(j)
	return j
}

func TestJobDefaults(t *testing.T) {
	j := createdJob()
	s := j.Spec
	uid := string(j.UID)
	if *s.Completions != 1 || *s.Parallelism != 1 || *s.BackoffLimit != 6 || *s.CompletionMode != batchv1.NonIndexedCompletion ||
		*s.Suspend || *s.PodReplacementPolicy != batchv1.TerminatingOrFailed {
		t.Errorf("defaults = completions %d parallelism %d backoffLimit %d mode %s suspend %v replacement %s",
			*s.Completions, *s.Parallelism, *s.BackoffLimit, *s.CompletionMode, *s.Suspend, *s.PodReplacementPolicy)
	}
	wantLabels := map[string]string{"app": "pi", "controller-uid": uid, LabelControllerUID: uid, "job-name": "pi", LabelJobName: "pi"}
	if diff := cmp.Diff(wantLabels, s.Template.Labels); diff != "" {
		t.Errorf("template labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&metav1.LabelSelector{MatchLabels: map[string]string{LabelControllerUID: uid}}, s.Selector); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"app": "pi"}, j.Labels); diff != "" {
		t.Errorf("job labels (-want +got):\n%s", diff)
	}

	// Only parallelism set: completions stays unset (a work queue).
	wq := testJob()
	wq.Spec.Parallelism = ptrTo[int32](3)
	jobResource.PrepareForCreate(wq)
	if wq.Spec.Completions != nil {
		t.Errorf("completions = %d, want unset when only parallelism is given", *wq.Spec.Completions)
	}
	// A per-index limit makes the global one unlimited; a failure policy
	// waits for pods to fail before replacing them.
	pi := testJob()
	pi.Spec.BackoffLimitPerIndex = ptrTo[int32](1)
	pi.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
	jobResource.PrepareForCreate(pi)
	if *pi.Spec.BackoffLimit != 1<<31-1 || *pi.Spec.PodReplacementPolicy != batchv1.Failed {
		t.Errorf("backoffLimit %d, replacement %s; want MaxInt32 and Failed", *pi.Spec.BackoffLimit, *pi.Spec.PodReplacementPolicy)
	}
}

func TestJobManualSelector(t *testing.T) {
	j := testJob()
	j.Spec.ManualSelector = ptrTo(true)
	j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
	jobResource.PrepareForCreate(j)
	if _, ok := j.Spec.Template.Labels[LabelControllerUID]; ok {
		t.Errorf("manual selector: template labels %v got a controller-uid", j.Spec.Template.Labels)
	}
	if errs := jobResource.ValidateCreate(j); len(errs) != 0 {
		t.Errorf("ValidateCreate = %v, want none", errs)
	}
}

func TestValidateJob(t *testing.T) {
	indexed := ptrTo(batchv1.IndexedCompletion)
	runValidation(t, jobResource, createdJob, []validationCase[*batchv1.Job]{
		{name: "valid"},
		{name: "negative parallelism", mutate: func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo[int32](-1) },
			want: []string{errKey(invalid, "spec.parallelism")}},
		{name: "negative completions", mutate: func(j *batchv1.Job) { j.Spec.Completions = ptrTo[int32](-2) },
			want: []string{errKey(invalid, "spec.completions")}},
		{name: "negative backoff", mutate: func(j *batchv1.Job) { j.Spec.BackoffLimit = ptrTo[int32](-1) },
			want: []string{errKey(invalid, "spec.backoffLimit")}},
		{name: "zero deadline", mutate: func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptrTo[int64](0) },
			want: []string{errKey(invalid, "spec.activeDeadlineSeconds")}},
		{name: "restart always", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			want: []string{errKey(notSupported, "spec.template.spec.restartPolicy")}},
		{name: "indexed without completions", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = indexed, nil
		}, want: []string{errKey(required, "spec.completions")}},
		{name: "bad completion mode", mutate: func(j *batchv1.Job) { j.Spec.CompletionMode = ptrTo(batchv1.CompletionMode("Sometimes")) },
			want: []string{errKey(notSupported, "spec.completionMode")}},
		{name: "per-index limit not indexed", mutate: func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptrTo[int32](1) },
			want: []string{errKey(forbidden, "spec.backoffLimitPerIndex")}},
		{name: "per-index limit", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = indexed, ptrTo[int32](4)
			j.Spec.BackoffLimitPerIndex, j.Spec.MaxFailedIndexes = ptrTo[int32](1), ptrTo[int32](4)
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}},
		{name: "negative per-index limit", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions, j.Spec.BackoffLimitPerIndex = indexed, ptrTo[int32](4), ptrTo[int32](-1)
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}, want: []string{errKey(invalid, "spec.backoffLimitPerIndex")}},
		{name: "per-index limit with OnFailure", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions, j.Spec.BackoffLimitPerIndex = indexed, ptrTo[int32](4), ptrTo[int32](1)
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}, want: []string{errKey(invalid, "spec.template.spec.restartPolicy")}},
		{name: "max failed indexes without per-index limit", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions, j.Spec.MaxFailedIndexes = indexed, ptrTo[int32](4), ptrTo[int32](1)
		}, want: []string{errKey(required, "spec.backoffLimitPerIndex")}},
		{name: "max failed indexes above completions", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = indexed, ptrTo[int32](2)
			j.Spec.BackoffLimitPerIndex, j.Spec.MaxFailedIndexes = ptrTo[int32](1), ptrTo[int32](3)
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}, want: []string{errKey(invalid, "spec.maxFailedIndexes")}},
		{name: "FailIndex without per-index limit", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = indexed, ptrTo[int32](2)
			j.Spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionFailIndex,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1}},
			}}}
		}, want: []string{errKey(forbidden, "spec.podFailurePolicy.rules[0].action")}},
		{name: "selector does not match", mutate: func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
		}, want: []string{errKey(invalid, "spec.template.metadata.labels")}},
		{name: "no selector", mutate: func(j *batchv1.Job) { j.Spec.Selector = nil },
			want: []string{errKey(required, "spec.selector")}},
		{name: "failure policy rule with neither", mutate: func(j *batchv1.Job) {
			j.Spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionFailJob}}}
		}, want: []string{errKey(invalid, "spec.podFailurePolicy.rules[0]")}},
		{name: "failure policy exit code 0 with In", mutate: func(j *batchv1.Job) {
			j.Spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{0, 1}},
			}}}
		}, want: []string{errKey(invalid, "spec.podFailurePolicy.rules[0].onExitCodes.values[0]")}},
		{name: "success policy not indexed", mutate: func(j *batchv1.Job) {
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededCount: ptrTo[int32](1)}}}
		}, want: []string{errKey(invalid, "spec.successPolicy")}},
		{name: "success policy bad indexes", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = indexed, ptrTo[int32](3)
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptrTo("0-5")}}}
		}, want: []string{errKey(invalid, "spec.successPolicy.rules[0].succeededIndexes")}},
	})
}

func TestValidateJobUpdate(t *testing.T) {
	runUpdate(t, jobResource, false, func() *batchv1.Job { return stored(jobResource, testJob()) }, []validationCase[*batchv1.Job]{
		{name: "parallelism may change", mutate: func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo[int32](4) }},
		{name: "suspend may change", mutate: func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(true) }},
		{name: "completions immutable", mutate: func(j *batchv1.Job) { j.Spec.Completions = ptrTo[int32](4) },
			want: []string{errKey(invalid, "spec.completions")}},
		{name: "template immutable", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:2" },
			want: []string{errKey(invalid, "spec.template")}},
		{name: "selector immutable", mutate: func(j *batchv1.Job) {
			j.Spec.Selector.MatchLabels["app"] = "pi"
		}, want: []string{errKey(invalid, "spec.selector")}},
	})
	suspended := func() *batchv1.Job {
		j := testJob()
		j.Spec.Suspend = ptrTo(true)
		return stored(jobResource, j)
	}
	runUpdate(t, jobResource, false, suspended, []validationCase[*batchv1.Job]{
		{name: "suspended: node selector may change", mutate: func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		}},
		{name: "suspended: image may not", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:2" },
			want: []string{errKey(invalid, "spec.template")}},
	})
	runUpdate(t, jobResource, true, func() *batchv1.Job { return stored(jobResource, testJob()) }, []validationCase[*batchv1.Job]{
		{name: "status counts", mutate: func(j *batchv1.Job) { j.Status.Active = 2; j.Status.Succeeded = 1 }},
		{name: "negative active", mutate: func(j *batchv1.Job) { j.Status.Active = -1 },
			want: []string{errKey(invalid, "status.active")}},
	})
}

func TestJobRow(t *testing.T) {
	j := stored(jobResource, testJob())
	j.Status.Succeeded = 1
	start, done := ago(90*1e9), ago(30*1e9)
	j.Status.StartTime, j.Status.CompletionTime = &start, &done
	j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	row := jobRow(j, testNow)
	if diff := cmp.Diff([]interface{}{"pi", "Complete", "1/1", "60s", "60m"}, row[:5]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestParseIndexes(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "", false},
		{"0,1,2,5", "0-2,5", false},
		{"1-3,7", "1-3,7", false},
		{"0-1,3,4,6", "0,1,3,4,6", false},
		{"3,1", "", true},
		{"1-12", "", true},
		{"a", "", true},
	}
	for _, tc := range tests {
		got, err := ParseIndexes(tc.in, 10)
		if (err != nil) != tc.wantErr || (err == nil && got.String() != tc.want) {
			t.Errorf("ParseIndexes(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if got := IndexesOf([]int32{4, 0, 1, 1, 2}).String(); got != "0-2,4" {
		t.Errorf("IndexesOf = %q, want 0-2,4", got)
	}
}
