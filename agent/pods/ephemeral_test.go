package pods

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

func withEphemeral(pod *corev1.Pod, name, cmd string) *corev1.Pod {
	p := bump(pod)
	ec := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: name, Image: testImage, Stdin: true, TTY: true}}
	if cmd != "" {
		ec.Command = []string{"sh", "-c", cmd}
	}
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
	return p
}

func ephemeralState(name string) func(corev1.PodStatus) bool {
	return func(st corev1.PodStatus) bool {
		for _, cs := range st.EphemeralContainerStatuses {
			if cs.Name == name {
				return cs.State.Running != nil || cs.State.Terminated != nil
			}
		}
		return false
	}
}

// An ephemeral container added to a running pod is started in its
// sandbox and reported in ephemeralContainerStatuses; one that exits is
// not started again, and neither changes the pod's phase or readiness.
func TestEphemeralContainers(t *testing.T) {
	pod := newPod("target", "")
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", allRunningFake)

	debug := withEphemeral(pod, "debugger", "")
	debug.Spec.EphemeralContainers[0].TargetContainerName = "c0"
	h.m.SetPods([]*corev1.Pod{debug})
	st := h.rep.waitStatus(t, pod.UID, wait, "debugger running", ephemeralState("debugger"))
	cs := st.EphemeralContainerStatuses[0]
	if cs.State.Running == nil || cs.ContainerID == "" {
		t.Errorf("debugger status %+v, want running with a container ID", cs)
	}
	if len(st.ContainerStatuses) != 1 || st.Phase != corev1.PodRunning || condition(st, corev1.PodReady) != corev1.ConditionTrue {
		t.Errorf("phase %s ready %s with %d container statuses, want Running, ready, 1", st.Phase, condition(st, corev1.PodReady), len(st.ContainerStatuses))
	}
	if spec := h.fake.ContainerSpec(string(pod.UID), "debugger"); spec == nil || spec.PIDNamespaceOf != "c0" {
		t.Errorf("debugger spec %+v, want it to join the process namespace of its target c0", spec)
	}
	if _, name, err := h.m.container(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, "debugger"); err != nil || name != "debugger" {
		t.Errorf("container(debugger) = %q, %v; want it found for exec, logs and attach", name, err)
	}

	once := withEphemeral(debug, "once", "exit 3")
	h.m.SetPods([]*corev1.Pod{once})
	st = h.rep.waitStatus(t, pod.UID, wait, "once exited", func(st corev1.PodStatus) bool {
		return len(st.EphemeralContainerStatuses) == 2 && st.EphemeralContainerStatuses[1].State.Terminated != nil
	})
	if term := st.EphemeralContainerStatuses[1].State.Terminated; term.ExitCode != 3 || st.Phase != corev1.PodRunning {
		t.Errorf("once exited with %d, pod %s; want 3 and Running", term.ExitCode, st.Phase)
	}
	time.Sleep(50 * time.Millisecond) // several syncs
	rs, err := h.fake.PodStatus(t.Context(), string(pod.UID))
	if err != nil {
		t.Fatal(err)
	}
	if rc := rs.Container("once"); rc == nil || rc.Attempt != 0 || rc.State != runtime.ContainerExited {
		t.Errorf("once = %+v, want its first attempt, exited", rc)
	}
}
