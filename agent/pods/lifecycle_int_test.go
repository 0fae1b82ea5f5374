//go:build integration

package pods

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestIntegrationLifecycleHooksAndMessages(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("hooks",
		"while [ ! -f /tmp/hook ]; do sleep 0.1; done; printf 'from file' > /dev/termination-log; exit 3",
		"echo oops; exit 2")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	c0, c1 := &pod.Spec.Containers[0], &pod.Spec.Containers[1]
	c0.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"sh", "-c", "echo started > /tmp/hook"}}}}
	c1.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError

	host := t.TempDir()
	stopped := newPod("prestop", "exec sleep 1000")
	stopped.Spec.TerminationGracePeriodSeconds = ptr(int64(3))
	stopped.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: host}}}}
	sc := &stopped.Spec.Containers[0]
	sc.VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
	sc.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"sh", "-c", "echo drained > /host/drained"}}}}

	h := startInt(t, e, Config{}, pod, stopped)
	st := h.rep.waitStatus(t, pod.UID, intWait, "Failed", phaseIs(corev1.PodFailed))
	want := map[string]struct {
		code int32
		msg  string
	}{"c0": {3, "from file"}, "c1": {2, "oops\n"}}
	for _, cs := range st.ContainerStatuses {
		term := cs.State.Terminated
		if term == nil || term.ExitCode != want[cs.Name].code || term.Message != want[cs.Name].msg {
			t.Errorf("%s: terminated = %+v, want exit %d message %q", cs.Name, term, want[cs.Name].code, want[cs.Name].msg)
		}
	}

	h.rep.waitStatus(t, stopped.UID, intWait, "Running", allRunning)
	h.m.SetPods([]*corev1.Pod{pod, markDeleted(bump(stopped), 3)})
	deadline := time.Now().Add(intWait)
	for h.rep.terminations(stopped.UID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("pod not terminated")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, err := os.ReadFile(filepath.Join(host, "drained")); err != nil || string(b) != "drained\n" {
		t.Errorf("preStop output = %q, %v", b, err)
	}
}
