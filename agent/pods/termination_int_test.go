//go:build integration

package pods

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// A pod whose name is longer than a hostname may be still starts, and a
// non-root container writes its message at a path of its own choosing.
func TestIntegrationLongNameNonRootMessage(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("termination-message-container7662b828-c6af-4ddf-9bc7-27634cd39ccf",
		"printf DONE > /dev/termination-custom-log; echo \"host $(hostname)\"")
	pod.UID = "7662b828-c6af-4ddf-9bc7-27634cd39ccf" // the API server's length, not newPod's
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	c := &pod.Spec.Containers[0]
	c.TerminationMessagePath = "/dev/termination-custom-log"
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(10000))}

	h := startInt(t, e, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, intWait, "Succeeded", phaseIs(corev1.PodSucceeded))
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.Message != "DONE" {
		t.Errorf("terminated = %+v, want message DONE", term)
	}
	waitLogs(t, h, pod, "c0", "host "+pod.Name[:63]+"\n")
}
