package pods

import (
	"errors"
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

// A pod asking for a sysctl the node does not allow fails before anything
// of it runs.
func TestUnsafeSysctlRejected(t *testing.T) {
	pod := newPod("sysctl", "")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{
		{Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "kernel/msgmax", Value: "10000000000"}}}
	h := start(t, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "Failed", phaseIs(corev1.PodFailed))
	want := `Pod was rejected: forbidden sysctl: "kernel/msgmax" not allowlisted`
	if st.Reason != reasonSysctlForbidden || st.Message != want {
		t.Errorf("reason %q message %q, want %q and %q", st.Reason, st.Message, reasonSysctlForbidden, want)
	}
	if _, err := h.fake.PodStatus(t.Context(), string(pod.UID)); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("sandbox of the rejected pod: %v, want none", err)
	}
}

func TestForbiddenSysctl(t *testing.T) {
	tests := []struct {
		names   []string
		hostNet bool
		want    string
	}{
		{nil, false, ""},
		{[]string{"kernel.shm_rmid_forced", "net/ipv4/ip_local_port_range"}, false, ""},
		{[]string{"kernel.shm_rmid_forced", "kernel.shmmax"}, false, "kernel.shmmax"},
		{[]string{"kernel.shm_rmid_forced", "net.ipv4.tcp_syncookies"}, true, "net.ipv4.tcp_syncookies"},
	}
	for _, tc := range tests {
		pod := newPod("p", "")
		pod.Spec.HostNetwork = tc.hostNet
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
		for _, n := range tc.names {
			pod.Spec.SecurityContext.Sysctls = append(pod.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
		}
		if got := forbiddenSysctl(pod); got != tc.want {
			t.Errorf("forbiddenSysctl(%v) = %q, want %q", tc.names, got, tc.want)
		}
	}
}
