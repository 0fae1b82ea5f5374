package controllers

import (
	"fmt"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// indexedPods returns the running pods of an Indexed Job by index.
func (e *env) indexedPods(job string, n int) map[string]corev1.Pod {
	e.t.Helper()
	out := map[string]corev1.Pod{}
	for _, p := range e.waitRunning(job, n) {
		out[p.Annotations[JobCompletionIndexKey]] = p
	}
	return out
}

func perIndexJob(completions, parallelism, limit int32) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr(completions), ptr(parallelism)
		j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
		j.Spec.BackoffLimitPerIndex = ptr(limit)
	}
}

// TestJobBackoffLimitPerIndex runs upstream's conformance case: odd
// indexes fail, even ones succeed, with one retry per index. Every index
// runs; the Job then fails with FailedIndexes.
func TestJobBackoffLimitPerIndex(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	startJobs(e, clock)
	e.createJob("perindex", perIndexJob(4, 2, 1))
	job := e.waitJob("perindex", "lists no failed index", func(j *batchv1.Job) error {
		if j.Status.FailedIndexes == nil || *j.Status.FailedIndexes != "" {
			return fmt.Errorf("failedIndexes %v", j.Status.FailedIndexes)
		}
		return nil
	})
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 1<<31-1 {
		t.Errorf("backoffLimit = %v, want the maximum by default", job.Spec.BackoffLimit)
	}
	finish := func(ix string, pod corev1.Pod) {
		if got := pod.Annotations[JobIndexFailureCountKey]; pod.Annotations[JobCompletionIndexKey] == ix && got == "" {
			t.Errorf("pod %s of index %s has no %s annotation", pod.Name, ix, JobIndexFailureCountKey)
		}
		if ix == "1" || ix == "3" {
			e.finishPodAt(pod.Name, corev1.PodFailed, 1, clock.Now())
		} else {
			e.finishPodAt(pod.Name, corev1.PodSucceeded, 0, clock.Now())
		}
	}
	seen := map[string][]string{} // index → failure counts of its pods
	for round := 0; ; round++ {
		if round > 20 {
			t.Fatalf("job not finished after %d rounds: %+v", round, e.getJob("perindex").Status)
		}
		var pods []corev1.Pod
		ending := false
		e.eventually("a running pod or the job's end", func() error {
			j := e.getJob("perindex")
			if ending = findJobCondition(&j.Status, batchv1.JobFailureTarget) != nil; ending {
				return nil
			}
			pods = runningPods(e.jobPods("perindex"))
			if len(pods) == 0 {
				clock.Advance(jobBackoffBase)
				e.touchJob("perindex")
				return fmt.Errorf("none")
			}
			return nil
		})
		if ending {
			break
		}
		p := pods[0]
		ix := p.Annotations[JobCompletionIndexKey]
		seen[ix] = append(seen[ix], p.Annotations[JobIndexFailureCountKey])
		finish(ix, p)
		e.waitJob("perindex", "records pod "+p.Name, func(j *batchv1.Job) error {
			for _, q := range e.jobPods("perindex") {
				if q.Name == p.Name && len(q.Finalizers) > 0 {
					return fmt.Errorf("pod %s not counted yet", q.Name)
				}
			}
			return nil
		})
	}
	job = e.waitJob("perindex", "fails", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobFailed, reasonFailedIndexes) })
	if err := hasCondition(job, batchv1.JobFailureTarget, reasonFailedIndexes); err != nil {
		t.Error(err)
	}
	st := job.Status
	if ptrValue(st.FailedIndexes) != "1,3" || st.CompletedIndexes != "0,2" || st.Failed != 4 || st.Succeeded != 2 {
		t.Errorf("status: failedIndexes %q completedIndexes %q failed %d succeeded %d; want 1,3 0,2 4 2",
			ptrValue(st.FailedIndexes), st.CompletedIndexes, st.Failed, st.Succeeded)
	}
	want := map[string][]string{"0": {"0"}, "1": {"0", "1"}, "2": {"0"}, "3": {"0", "1"}}
	for ix, counts := range want {
		if !slices.Equal(seen[ix], counts) {
			t.Errorf("index %s: pods with failure counts %v, want %v", ix, seen[ix], counts)
		}
	}
}

// TestJobIndexRetryDelay checks that a failed index is retried only after
// its own backoff delay, which grows with its failures, while the other
// indexes run on.
func TestJobIndexRetryDelay(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	c := startJobs(e, clock)
	e.createJob("delay", perIndexJob(2, 2, 5))
	pods := e.indexedPods("delay", 2)
	failIndex0 := func(failures int) {
		t.Helper()
		p := pods["0"]
		e.finishPodAt(p.Name, corev1.PodFailed, 1, clock.Now())
		e.waitJob("delay", "counts the failure", func(j *batchv1.Job) error {
			if j.Status.Failed != int32(failures) {
				return fmt.Errorf("failed %d", j.Status.Failed)
			}
			return nil
		})
	}
	// First failure: 10 s; second: 20 s. Index 1 keeps running throughout.
	for failures, delay := range []int{10, 20} {
		failIndex0(failures + 1)
		clock.Advance(jobBackoff(failures+1) - jobBackoffBase/2)
		e.syncJobNow(c, "delay")
		if got := runningPods(e.jobPods("delay")); len(got) != 1 || got[0].Annotations[JobCompletionIndexKey] != "1" {
			t.Fatalf("after %d failures and %ds of a %ds delay: running %d pods, want index 1 only", failures+1, delay-5, delay, len(got))
		}
		clock.Advance(jobBackoffBase / 2)
		e.syncJobNow(c, "delay")
		pods = e.indexedPods("delay", 2)
		if got := pods["0"].Annotations[JobIndexFailureCountKey]; got != fmt.Sprint(failures+1) {
			t.Errorf("retry of index 0 has failure count %q, want %d", got, failures+1)
		}
	}
}

// TestJobMaxFailedIndexes fails the Job at the first failed index when
// maxFailedIndexes is 0; no other index starts.
func TestJobMaxFailedIndexes(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	e.createJob("maxfailed", func(j *batchv1.Job) {
		perIndexJob(4, 1, 0)(j)
		j.Spec.MaxFailedIndexes = ptr[int32](0)
	})
	p := e.waitRunning("maxfailed", 1)[0]
	e.finishPod(p.Name, corev1.PodFailed, 1)
	job := e.waitJob("maxfailed", "fails", func(j *batchv1.Job) error {
		return hasCondition(j, batchv1.JobFailed, reasonMaxFailedIndexesExceeded)
	})
	if ptrValue(job.Status.FailedIndexes) != "0" || job.Status.Failed != 1 {
		t.Errorf("failedIndexes %q failed %d; want 0 and 1", ptrValue(job.Status.FailedIndexes), job.Status.Failed)
	}
	if n := len(e.jobPods("maxfailed")); n != 1 {
		t.Errorf("%d pods created, want 1", n)
	}
}

// TestJobFailIndexAction fails an index at once when a FailIndex rule
// matches, despite retries left.
func TestJobFailIndexAction(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	e.createJob("failindex", func(j *batchv1.Job) {
		perIndexJob(2, 2, 1)(j)
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action:      batchv1.PodFailurePolicyActionFailIndex,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1}},
		}}}
	})
	pods := e.indexedPods("failindex", 2)
	e.finishPod(pods["1"].Name, corev1.PodFailed, 1)
	e.waitJob("failindex", "fails index 1", func(j *batchv1.Job) error {
		if ptrValue(j.Status.FailedIndexes) != "1" {
			return fmt.Errorf("failedIndexes %v", j.Status.FailedIndexes)
		}
		return nil
	})
	e.finishPod(pods["0"].Name, corev1.PodSucceeded, 0)
	job := e.waitJob("failindex", "fails", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobFailed, reasonFailedIndexes) })
	st := job.Status
	if st.CompletedIndexes != "0" || st.Failed != 1 || st.Succeeded != 1 {
		t.Errorf("completedIndexes %q failed %d succeeded %d; want 0, 1, 1", st.CompletedIndexes, st.Failed, st.Succeeded)
	}
	if n := len(e.jobPods("failindex")); n != 2 {
		t.Errorf("%d pods, want 2 (index 1 not retried)", n)
	}
}

// TestJobAdoptsAndReleases runs upstream's conformance case: an orphan
// the selector matches is adopted, with the tracking finalizer; a pod
// whose labels stop matching is released and loses it, and the Job
// replaces it.
func TestJobAdoptsAndReleases(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	job := e.createJob("adopt", func(j *batchv1.Job) { j.Spec.Parallelism, j.Spec.Completions = ptr[int32](2), ptr[int32](4) })
	pod := e.waitRunning("adopt", 2)[0]
	pods := e.client.CoreV1().Pods("default")
	orphan, err := pods.Get(e.ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orphan.OwnerReferences, orphan.Finalizers = nil, nil
	if _, err := pods.Update(e.ctx, orphan, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("orphan pod: %v", err)
	}
	e.eventually("pod adopted", func() error {
		p, err := pods.Get(e.ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.UID != job.UID || ref.Kind != "Job" || !hasTrackingFinalizer(p) {
			return fmt.Errorf("controller %+v, finalizers %v", ref, p.Finalizers)
		}
		return nil
	})
	if n := len(runningPods(e.jobPods("adopt"))); n != 2 {
		t.Errorf("%d running pods after adoption, want 2", n)
	}
	e.eventually("labels removed", func() error {
		p, err := pods.Get(e.ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Labels = nil
		_, err = pods.Update(e.ctx, p, metav1.UpdateOptions{})
		return err
	})
	e.eventually("pod released", func() error {
		p, err := pods.Get(e.ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ref := metav1.GetControllerOf(p); ref != nil || len(p.Finalizers) > 0 {
			return fmt.Errorf("controller %+v, finalizers %v", ref, p.Finalizers)
		}
		return nil
	})
	e.waitRunning("adopt", 2)
}

// syncJobNow runs one sync of the Job by hand once c's caches show the
// Job and its pods as the API has them, so that what the sync creates can
// be checked right after.
func (e *env) syncJobNow(c *JobController, name string) {
	e.t.Helper()
	e.eventually("caches up to date", func() error {
		cached, err := c.jobs.Jobs("default").Get(name)
		if err != nil || cached.ResourceVersion != e.getJob(name).ResourceVersion {
			return fmt.Errorf("job cache behind")
		}
		for _, p := range e.jobPods(name) {
			cp, err := c.pods.Pods("default").Get(p.Name)
			if err != nil || cp.ResourceVersion != p.ResourceVersion {
				return fmt.Errorf("pod cache behind")
			}
		}
		return nil
	})
	if err := c.sync(e.ctx, "default/"+name); err != nil {
		e.t.Fatalf("sync: %v", err)
	}
}

// TestJobRetryDelayGrows checks the delay before a failed pod of a Job is
// replaced: 10 s after the first failure, 20 s after the second.
func TestJobRetryDelayGrows(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	c := startJobs(e, clock)
	e.createJob("grows", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr[int32](5) })
	for failures, delay := range []time.Duration{10 * time.Second, 20 * time.Second} {
		p := e.waitRunning("grows", 1)[0]
		e.finishPodAt(p.Name, corev1.PodFailed, 1, clock.Now())
		e.waitJob("grows", "counts the failure", func(j *batchv1.Job) error {
			if j.Status.Failed != int32(failures+1) {
				return fmt.Errorf("failed %d", j.Status.Failed)
			}
			return nil
		})
		clock.Advance(delay - time.Second)
		e.syncJobNow(c, "grows")
		if n := len(runningPods(e.jobPods("grows"))); n != 0 {
			t.Fatalf("after failure %d, %v into a delay of %v: %d running pods, want 0", failures+1, delay-time.Second, delay, n)
		}
		clock.Advance(time.Second)
		e.syncJobNow(c, "grows")
		if n := len(runningPods(e.jobPods("grows"))); n != 1 {
			t.Fatalf("after failure %d and its delay of %v: %d running pods, want 1", failures+1, delay, n)
		}
	}
}

// TestJobSuccessPolicy runs upstream's conformance case: a rule on index
// 0 completes the Job as soon as index 0 succeeds; the other pods go.
func TestJobSuccessPolicy(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	e.createJob("policy", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr[int32](5), ptr[int32](2)
		j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
		j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr("0")}}}
	})
	pods := e.indexedPods("policy", 2)
	e.finishPod(pods["0"].Name, corev1.PodSucceeded, 0)
	job := e.waitJob("policy", "completes", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobComplete, reasonSuccessPolicy) })
	if err := hasCondition(job, batchv1.JobSuccessCriteriaMet, reasonSuccessPolicy); err != nil {
		t.Error(err)
	}
	st := job.Status
	if st.CompletedIndexes != "0" || st.Active != 0 || ptrValue(st.Ready) != 0 || ptrValue(st.Terminating) != 0 || st.CompletionTime == nil {
		t.Errorf("status: completedIndexes %q active %d ready %v terminating %v completionTime %v; want 0, 0, 0, 0, set",
			st.CompletedIndexes, st.Active, ptrValue(st.Ready), ptrValue(st.Terminating), st.CompletionTime)
	}
	if n := len(runningPods(e.jobPods("policy"))); n != 0 {
		t.Errorf("%d pods still running", n)
	}
}

// TestJobFailedIndexesAcrossRestart starts the controller on the state a
// previous one may have left: a failure recorded as uncounted together
// with its failed index, and a failure not yet recorded. Each is counted
// once and each index listed once.
func TestJobFailedIndexesAcrossRestart(t *testing.T) {
	e := newEnv(t)
	job := e.createJob("resume", perIndexJob(3, 0, 0))
	mk := func(name, index string) types.UID {
		p := e.createPod(name, job.Spec.Template.Labels, func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{jobControllerRef(job)}
			p.Annotations = map[string]string{JobCompletionIndexKey: index, JobIndexFailureCountKey: "0"}
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Finalizers = []string{JobTrackingFinalizer}
		})
		e.finishPod(name, corev1.PodFailed, 1)
		return p.UID
	}
	staged := mk("staged", "0") // recorded with its index before the restart
	mk("new", "1")              // failed while no controller ran
	job = e.getJob("resume")
	job.Status.StartTime = &metav1.Time{Time: time.Now()}
	job.Status.FailedIndexes = ptr("0")
	job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Failed: []types.UID{staged}}
	if _, err := e.client.BatchV1().Jobs("default").UpdateStatus(e.ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("write status: %v", err)
	}
	c := startJobs(e, newFakeClock())
	want := func(j *batchv1.Job) error {
		if j.Status.Failed != 2 || ptrValue(j.Status.FailedIndexes) != "0,1" || !uncountedEmpty(&j.Status) {
			return fmt.Errorf("failed %d failedIndexes %v uncounted %+v; want 2, 0,1, none",
				j.Status.Failed, ptrValue(j.Status.FailedIndexes), j.Status.UncountedTerminatedPods)
		}
		return nil
	}
	e.waitJob("resume", "counts each failure once", want)
	e.syncJobNow(c, "resume")
	e.syncJobNow(c, "resume")
	if err := want(e.getJob("resume")); err != nil {
		t.Error(err)
	}
}

// TestJobIgnoresEvictions runs upstream's conformance case: a rule
// ignoring pods with the DisruptionTarget condition lets evicted pods be
// replaced without counting as failures.
func TestJobIgnoresEvictions(t *testing.T) {
	e := newEnv(t)
	startJobs(e, newFakeClock())
	e.createJob("evicted", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism, j.Spec.BackoffLimit = ptr[int32](2), ptr[int32](2), ptr[int32](0)
		j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action:          batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
		}}}
	})
	pods := e.indexedPods("evicted", 2)
	for _, p := range pods {
		e.setPodStatus(p.Name, corev1.PodRunning, "", true, 0)
		err := e.client.PolicyV1().Evictions("default").Evict(e.ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: "default"}})
		if err != nil {
			t.Fatalf("evict %s: %v", p.Name, err)
		}
		// The node stops the pod; the tracking finalizer keeps it, Failed.
		e.finishPod(p.Name, corev1.PodFailed, 137)
	}
	e.eventually("evicted pods replaced", func() error {
		running := runningPods(e.jobPods("evicted"))
		if len(running) != 2 {
			return fmt.Errorf("%d running", len(running))
		}
		pods = map[string]corev1.Pod{}
		for _, p := range running {
			pods[p.Annotations[JobCompletionIndexKey]] = p
		}
		return nil
	})
	for _, p := range pods {
		e.finishPod(p.Name, corev1.PodSucceeded, 0)
	}
	job := e.waitJob("evicted", "completes", func(j *batchv1.Job) error { return hasCondition(j, batchv1.JobComplete, reasonCompletionsReached) })
	if job.Status.Failed != 0 || job.Status.Succeeded != 2 {
		t.Errorf("failed %d succeeded %d, want 0 and 2 (evictions ignored)", job.Status.Failed, job.Status.Succeeded)
	}
}
