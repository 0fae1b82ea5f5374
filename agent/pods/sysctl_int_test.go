//go:build integration

package pods

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// A safe namespaced sysctl set in the pod is what its container reads.
func TestIntegrationSysctl(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("sysctl", "echo \"shm_rmid_forced=$(cat /proc/sys/kernel/shm_rmid_forced)\"")
	pod.UID = "1cee258a-6dff-4d99-94d2-f62e1a37d35b"
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel/shm_rmid_forced", Value: "1"}}}
	h := startInt(t, e, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, intWait, "Succeeded", phaseIs(corev1.PodSucceeded))
	waitLogs(t, h, pod, "c0", "shm_rmid_forced=1\n")
}
