package pods

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/runtime"
)

var (
	t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func running(name string, attempt int) runtime.ContainerStatus {
	return runtime.ContainerStatus{Name: name, ID: name + "-id", Attempt: attempt, State: runtime.ContainerRunning, StartedAt: t0}
}

func exitedWith(name string, attempt, code int) runtime.ContainerStatus {
	c := running(name, attempt)
	c.State, c.ExitCode, c.FinishedAt, c.Reason = runtime.ContainerExited, code, t1, "Completed"
	if code != 0 {
		c.Reason = "Error"
	}
	return c
}

func sandbox(ctrs ...runtime.ContainerStatus) *runtime.PodStatus {
	return &runtime.PodStatus{State: runtime.SandboxReady, IP: "10.42.0.5", Containers: ctrs}
}

// summary is the part of a status the table checks.
type summary struct {
	Phase      corev1.PodPhase
	PodIP      string
	Conditions map[corev1.PodConditionType]corev1.ConditionStatus
	States     []string // per container: reason or "running"
	Restarts   []int32
	LastExit   []int32 // -1 without lastState
}

func summarize(st corev1.PodStatus) summary {
	s := summary{Phase: st.Phase, PodIP: st.PodIP, Conditions: map[corev1.PodConditionType]corev1.ConditionStatus{}}
	for _, c := range st.Conditions {
		s.Conditions[c.Type] = c.Status
	}
	for _, cs := range append(st.InitContainerStatuses, st.ContainerStatuses...) {
		switch {
		case cs.State.Running != nil:
			s.States = append(s.States, "running")
		case cs.State.Waiting != nil:
			s.States = append(s.States, cs.State.Waiting.Reason)
		case cs.State.Terminated != nil:
			s.States = append(s.States, cs.State.Terminated.Reason)
		}
		s.Restarts = append(s.Restarts, cs.RestartCount)
		last := int32(-1)
		if lt := cs.LastTerminationState.Terminated; lt != nil {
			last = lt.ExitCode
		}
		s.LastExit = append(s.LastExit, last)
	}
	return s
}

func conds(ready, cr, init, sb corev1.ConditionStatus) map[corev1.PodConditionType]corev1.ConditionStatus {
	return map[corev1.PodConditionType]corev1.ConditionStatus{
		corev1.PodReady: ready, corev1.ContainersReady: cr, corev1.PodInitialized: init,
		"PodReadyToStartContainers": sb, corev1.PodScheduled: corev1.ConditionTrue,
	}
}

const (
	yes = corev1.ConditionTrue
	no  = corev1.ConditionFalse
)

func TestComputeStatus(t *testing.T) {
	backoff := map[string]*corev1.ContainerStateWaiting{"c0": {Reason: reasonCrashLoopBackOff}}
	tests := []struct {
		name    string
		policy  corev1.RestartPolicy
		init    bool
		rs      *runtime.PodStatus
		waiting map[string]*corev1.ContainerStateWaiting
		exits   map[string]runtime.ContainerStatus
		want    summary
	}{
		{name: "no sandbox", want: summary{Phase: corev1.PodPending, Conditions: conds(no, no, yes, no),
			States: []string{reasonContainerCreating, reasonContainerCreating}, Restarts: []int32{0, 0}, LastExit: []int32{-1, -1}}},
		{name: "one running one creating", rs: sandbox(running("c0", 0)),
			want: summary{Phase: corev1.PodPending, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, yes),
				States: []string{"running", reasonContainerCreating}, Restarts: []int32{0, 0}, LastExit: []int32{-1, -1}}},
		{name: "all running after restarts", rs: sandbox(running("c0", 2), running("c1", 0)),
			exits: map[string]runtime.ContainerStatus{"c0": exitedWith("c0", 1, 7)},
			want: summary{Phase: corev1.PodRunning, PodIP: "10.42.0.5", Conditions: conds(yes, yes, yes, yes),
				States: []string{"running", "running"}, Restarts: []int32{2, 0}, LastExit: []int32{7, -1}}},
		{name: "crash loop", rs: sandbox(exitedWith("c0", 3, 1), running("c1", 0)), waiting: backoff,
			want: summary{Phase: corev1.PodRunning, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, yes),
				States: []string{reasonCrashLoopBackOff, "running"}, Restarts: []int32{3, 0}, LastExit: []int32{1, -1}}},
		{name: "crash loop of every container", rs: sandbox(exitedWith("c0", 1, 1), exitedWith("c1", 1, 1)),
			waiting: map[string]*corev1.ContainerStateWaiting{"c0": {Reason: reasonCrashLoopBackOff}, "c1": {Reason: reasonCrashLoopBackOff}},
			want: summary{Phase: corev1.PodRunning, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, yes),
				States: []string{reasonCrashLoopBackOff, reasonCrashLoopBackOff}, Restarts: []int32{1, 1}, LastExit: []int32{1, 1}}},
		{name: "never: all succeeded", policy: corev1.RestartPolicyNever, rs: sandbox(exitedWith("c0", 0, 0), exitedWith("c1", 0, 0)),
			want: summary{Phase: corev1.PodSucceeded, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, yes),
				States: []string{"Completed", "Completed"}, Restarts: []int32{0, 0}, LastExit: []int32{-1, -1}}},
		{name: "never: one failed", policy: corev1.RestartPolicyNever, rs: sandbox(exitedWith("c0", 0, 0), exitedWith("c1", 0, 2)),
			want: summary{Phase: corev1.PodFailed, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, yes),
				States: []string{"Completed", "Error"}, Restarts: []int32{0, 0}, LastExit: []int32{-1, -1}}},
		{name: "never: one still running", policy: corev1.RestartPolicyNever, rs: sandbox(running("c0", 0), exitedWith("c1", 0, 2)),
			want: summary{Phase: corev1.PodRunning, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, yes),
				States: []string{"running", "Error"}, Restarts: []int32{0, 0}, LastExit: []int32{-1, -1}}},
		{name: "image pull error", rs: sandbox(running("c1", 0)),
			waiting: map[string]*corev1.ContainerStateWaiting{"c0": {Reason: reasonErrImagePull}},
			want: summary{Phase: corev1.PodPending, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, yes),
				States: []string{reasonErrImagePull, "running"}, Restarts: []int32{0, 0}, LastExit: []int32{-1, -1}}},
		{name: "init running", init: true, rs: sandbox(running("i0", 0)),
			want: summary{Phase: corev1.PodPending, PodIP: "10.42.0.5", Conditions: conds(no, no, no, yes),
				States: []string{"running", reasonPodInitializing, reasonPodInitializing}, Restarts: []int32{0, 0, 0}, LastExit: []int32{-1, -1, -1}}},
		{name: "init done", init: true, rs: sandbox(exitedWith("i0", 0, 0), running("c0", 0), running("c1", 0)),
			want: summary{Phase: corev1.PodRunning, PodIP: "10.42.0.5", Conditions: conds(yes, yes, yes, yes),
				States: []string{"Completed", "running", "running"}, Restarts: []int32{0, 0, 0}, LastExit: []int32{-1, -1, -1}}},
		{name: "init failed, never", init: true, policy: corev1.RestartPolicyNever, rs: sandbox(exitedWith("i0", 0, 1)),
			want: summary{Phase: corev1.PodFailed, PodIP: "10.42.0.5", Conditions: conds(no, no, no, yes),
				States: []string{"Error", reasonPodInitializing, reasonPodInitializing}, Restarts: []int32{0, 0, 0}, LastExit: []int32{-1, -1, -1}}},
		{name: "stopped sandbox keeps the IP", policy: corev1.RestartPolicyNever,
			rs: &runtime.PodStatus{State: runtime.SandboxNotReady, IP: "10.42.0.5", Containers: []runtime.ContainerStatus{exitedWith("c0", 0, 0), exitedWith("c1", 0, 0)}},
			want: summary{Phase: corev1.PodSucceeded, PodIP: "10.42.0.5", Conditions: conds(no, no, yes, no),
				States: []string{"Completed", "Completed"}, Restarts: []int32{0, 0}, LastExit: []int32{-1, -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod("p", "", "")
			if tc.policy != "" {
				pod.Spec.RestartPolicy = tc.policy
			}
			if tc.init {
				pod.Spec.InitContainers = []corev1.Container{{Name: "i0", Image: testImage}}
			}
			st := computeStatus(statusInput{pod: pod, rs: tc.rs, waiting: tc.waiting, exits: tc.exits, hostIP: "192.0.2.10", now: t1})
			if d := cmp.Diff(tc.want, summarize(st)); d != "" {
				t.Errorf("status (-want +got):\n%s", d)
			}
		})
	}
}

func TestComputeStatusDetails(t *testing.T) {
	pod := newPod("p", "")
	prev := corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
		{Type: corev1.PodInitialized, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)},
	}}
	pod.Generation = 3
	st := computeStatus(statusInput{pod: pod, rs: sandbox(running("c0", 1)), hostIP: "192.0.2.10", prev: &prev, now: t1})
	if st.ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d, want the pod's generation 3", st.ObservedGeneration)
	}
	for _, c := range st.Conditions {
		if c.ObservedGeneration != 3 {
			t.Errorf("condition %s: observedGeneration %d, want 3", c.Type, c.ObservedGeneration)
		}
		want := t1
		if c.Type == corev1.PodReady {
			want = t0 // unchanged since prev
		}
		if !c.LastTransitionTime.Time.Equal(want) {
			t.Errorf("condition %s: lastTransitionTime %v, want %v", c.Type, c.LastTransitionTime, want)
		}
	}
	cs := st.ContainerStatuses[0]
	want := corev1.ContainerStatus{
		Name: "c0", Image: testImage, ImageID: testImage, ContainerID: "containerd://c0-id", RestartCount: 1,
		Ready: true, Started: ptr(true), Resources: &corev1.ResourceRequirements{},
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}},
	}
	if d := cmp.Diff(want, cs); d != "" {
		t.Errorf("container status (-want +got):\n%s", d)
	}
	if st.HostIP != "192.0.2.10" || len(st.PodIPs) != 1 || st.PodIPs[0].IP != "10.42.0.5" {
		t.Errorf("hostIP %q podIPs %v", st.HostIP, st.PodIPs)
	}
}
