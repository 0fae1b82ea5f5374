//go:build integration

package pods

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// An ephemeral container added to a running pod runs in its sandbox (it
// sees the pod's hostname) and in its target's process namespace, takes
// exec sessions and has logs, also with a TTY.
func TestIntegrationEphemeralContainer(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("target", "exec sleep 1000")
	h := startInt(t, e, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, intWait, "Running", allRunning)

	debug := withEphemeral(pod, "debugger", "while true; do echo polo; sleep 2; done")
	debug.Spec.EphemeralContainers[0].TargetContainerName = "c0"
	h.m.SetPods([]*corev1.Pod{debug})
	h.rep.waitStatus(t, pod.UID, intWait, "debugger running", func(st corev1.PodStatus) bool {
		return len(st.EphemeralContainerStatuses) == 1 && st.EphemeralContainerStatuses[0].State.Running != nil
	})
	if out, code := h.exec(t, pod, "debugger", "/bin/echo", "marco"); code != 0 || !strings.Contains(out, "marco") {
		t.Errorf("exec in the debugger = %q, exit %d; want marco", out, code)
	}
	if out, _ := h.exec(t, pod, "debugger", "hostname"); strings.TrimSpace(out) != pod.Name {
		t.Errorf("hostname in the debugger = %q, want the pod's %q", out, pod.Name)
	}
	if out, _ := h.exec(t, pod, "debugger", "ps"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("ps in the debugger = %q, want the target's sleep 1000", out)
	}
	waitLogsContain(t, h, pod, "debugger", "polo")
}

func waitLogsContain(t *testing.T, h *harness, pod *corev1.Pod, ctr, want string) {
	t.Helper()
	deadline := time.Now().Add(intWait)
	for {
		got := h.logs(t, pod, ctr, nil)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s = %q, want them to contain %q", ctr, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
