package pods

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// A running pod whose activeDeadlineSeconds is lowered by an update below
// the time it has run is stopped and fails with DeadlineExceeded.
func TestActiveDeadlineLowered(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	pod := newPod("deadline", "")
	pod.Spec.ActiveDeadlineSeconds = ptr(int64(5000))
	h := start(t, Config{Now: clk.Now}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", allRunningFake)
	clk.Add(10 * time.Second)
	updated := bump(pod)
	updated.Spec.ActiveDeadlineSeconds = ptr(int64(5))
	h.m.SetPods([]*corev1.Pod{updated})
	st := h.rep.waitStatus(t, pod.UID, wait, "Failed", phaseIs(corev1.PodFailed))
	if st.Reason != reasonDeadlineExceeded || st.Message != messageDeadlineExceeded {
		t.Errorf("reason %q message %q, want %q and %q", st.Reason, st.Message, reasonDeadlineExceeded, messageDeadlineExceeded)
	}
	rs, err := h.fake.PodStatus(t.Context(), string(pod.UID))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rs.Containers {
		if c.State == runtime.ContainerRunning {
			t.Errorf("container %s still runs past the deadline", c.Name)
		}
	}
	if cs := st.ContainerStatuses[0]; cs.State.Terminated == nil {
		t.Errorf("container state %+v, want terminated", cs.State)
	}
}

// A pod within its deadline keeps running.
func TestActiveDeadlineNotReached(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	pod := newPod("deadline", "")
	pod.Spec.ActiveDeadlineSeconds = ptr(int64(30))
	h := start(t, Config{Now: clk.Now}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", allRunningFake)
	clk.Add(29 * time.Second)
	h.m.SetPods([]*corev1.Pod{bump(pod)})
	time.Sleep(50 * time.Millisecond)
	if st, _ := h.rep.last(pod.UID); st.Phase != corev1.PodRunning {
		t.Errorf("phase %s one second before the deadline, want Running", st.Phase)
	}
}

// A worker started again for a pod it failed keeps the reason.
func TestFailureOfReportedStatus(t *testing.T) {
	st := corev1.PodStatus{Phase: corev1.PodFailed, Reason: reasonDeadlineExceeded, Message: messageDeadlineExceeded}
	if f := failureOf(&st); f == nil || f.reason != reasonDeadlineExceeded {
		t.Errorf("failureOf(%+v) = %+v, want the deadline failure", st, f)
	}
	st.Reason = ""
	if f := failureOf(&st); f != nil {
		t.Errorf("failureOf a pod its containers failed = %+v, want nil", f)
	}
}

func allRunningFake(st corev1.PodStatus) bool {
	return st.Phase == corev1.PodRunning && len(st.ContainerStatuses) > 0 && st.ContainerStatuses[0].State.Running != nil
}
