package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Container states for the pod table tests.
var (
	running   = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	creating  = waiting("ContainerCreating")
	completed = terminated("Completed", 0)
)

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}
}

// tablePod is a pod with the given containers (all named c0, c1, …) and
// init containers (i0, i1, …) in the given states.
func tablePod(phase corev1.PodPhase, inits []corev1.ContainerState, apps ...corev1.ContainerState) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", CreationTimestamp: ago(90 * time.Minute)},
		Status:     corev1.PodStatus{Phase: phase},
	}
	for i, st := range inits {
		name := "i" + string(rune('0'+i))
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: name})
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{Name: name, State: st})
	}
	for i, st := range apps {
		name := "c" + string(rune('0'+i))
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: name})
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: name, State: st, Ready: st.Running != nil,
		})
	}
	return pod
}

func TestPodRowStatus(t *testing.T) {
	tests := []struct {
		name   string
		pod    func() *corev1.Pod
		ready  string
		status string
	}{
		{"pending, not scheduled", func() *corev1.Pod {
			p := tablePod(corev1.PodPending, nil)
			p.Spec.Containers = []corev1.Container{{Name: "c0"}}
			return p
		}, "0/1", "Pending"},
		{"container creating", func() *corev1.Pod { return tablePod(corev1.PodPending, nil, creating) }, "0/1", "ContainerCreating"},
		{"running", func() *corev1.Pod { return tablePod(corev1.PodRunning, nil, running, running) }, "2/2", "Running"},
		{"one crash looping", func() *corev1.Pod {
			return tablePod(corev1.PodRunning, nil, running, waiting("CrashLoopBackOff"))
		}, "1/2", "CrashLoopBackOff"},
		{"image pull", func() *corev1.Pod { return tablePod(corev1.PodPending, nil, waiting("ErrImagePull")) }, "0/1", "ErrImagePull"},
		{"first reason in spec order wins", func() *corev1.Pod {
			return tablePod(corev1.PodPending, nil, waiting("ImagePullBackOff"), waiting("ContainerCreating"))
		}, "0/2", "ImagePullBackOff"},
		{"completed", func() *corev1.Pod { return tablePod(corev1.PodSucceeded, nil, completed) }, "0/1", "Completed"},
		{"error", func() *corev1.Pod { return tablePod(corev1.PodFailed, nil, terminated("Error", 1)) }, "0/1", "Error"},
		{"exit code without reason", func() *corev1.Pod { return tablePod(corev1.PodFailed, nil, terminated("", 3)) }, "0/1", "ExitCode:3"},
		{"signal without reason", func() *corev1.Pod {
			p := tablePod(corev1.PodFailed, nil, terminated("", 137))
			p.Status.ContainerStatuses[0].State.Terminated.Signal = 9
			return p
		}, "0/1", "Signal:9"},
		{"completed while another runs, pod ready", func() *corev1.Pod {
			p := tablePod(corev1.PodRunning, nil, running, completed)
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			return p
		}, "1/2", "Running"},
		{"completed while another runs, pod not ready", func() *corev1.Pod {
			return tablePod(corev1.PodRunning, nil, running, completed)
		}, "1/2", "NotReady"},
		{"pod reason", func() *corev1.Pod {
			p := tablePod(corev1.PodFailed, nil, running)
			p.Status.Reason = "Evicted"
			p.Status.ContainerStatuses = nil
			return p
		}, "0/1", "Evicted"},
		{"init container pending", func() *corev1.Pod {
			return tablePod(corev1.PodPending, []corev1.ContainerState{completed, waiting("PodInitializing")}, waiting("PodInitializing"))
		}, "0/1", "Init:1/2"},
		{"init container crash looping", func() *corev1.Pod {
			return tablePod(corev1.PodPending, []corev1.ContainerState{waiting("CrashLoopBackOff")}, waiting("PodInitializing"))
		}, "0/1", "Init:CrashLoopBackOff"},
		{"init container failed", func() *corev1.Pod {
			return tablePod(corev1.PodPending, []corev1.ContainerState{terminated("Error", 1)}, waiting("PodInitializing"))
		}, "0/1", "Init:Error"},
		{"init container exit code", func() *corev1.Pod {
			return tablePod(corev1.PodPending, []corev1.ContainerState{terminated("", 2)}, waiting("PodInitializing"))
		}, "0/1", "Init:ExitCode:2"},
		{"init done", func() *corev1.Pod {
			return tablePod(corev1.PodRunning, []corev1.ContainerState{completed}, running)
		}, "1/1", "Running"},
		{"sidecar counts as a container", func() *corev1.Pod {
			p := tablePod(corev1.PodRunning, []corev1.ContainerState{running}, running)
			p.Spec.InitContainers[0].RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
			p.Status.InitContainerStatuses[0].Started = ptrTo(true)
			p.Status.InitContainerStatuses[0].Ready = true
			return p
		}, "2/2", "Running"},
		{"terminating", func() *corev1.Pod {
			p := tablePod(corev1.PodRunning, nil, running)
			p.DeletionTimestamp = ptrTo(ago(time.Second))
			return p
		}, "1/1", "Terminating"},
		{"deleted after it finished", func() *corev1.Pod {
			p := tablePod(corev1.PodSucceeded, nil, completed)
			p.DeletionTimestamp = ptrTo(ago(time.Second))
			return p
		}, "0/1", "Completed"},
		{"node lost", func() *corev1.Pod {
			p := tablePod(corev1.PodRunning, nil, running)
			p.Status.Reason = "NodeLost"
			p.DeletionTimestamp = ptrTo(ago(time.Second))
			return p
		}, "1/1", "Unknown"},
		{"scheduling gated", func() *corev1.Pod {
			p := tablePod(corev1.PodPending, nil)
			p.Spec.Containers = []corev1.Container{{Name: "c0"}}
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"}}
			return p
		}, "0/1", "SchedulingGated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			row := podRow(tc.pod(), testNow)
			got := []interface{}{row[1], row[2]}
			if diff := cmp.Diff([]interface{}{tc.ready, tc.status}, got); diff != "" {
				t.Errorf("READY, STATUS (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodRowRestarts(t *testing.T) {
	restarted := func(n int32, finished time.Duration) corev1.ContainerStatus {
		st := corev1.ContainerStatus{Name: "c0", RestartCount: n, State: running, Ready: true}
		if finished > 0 {
			st.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: ago(finished)}
		}
		return st
	}
	tests := []struct {
		name     string
		statuses []corev1.ContainerStatus
		want     string
	}{
		{"none", []corev1.ContainerStatus{restarted(0, 0)}, "0"},
		{"with last restart", []corev1.ContainerStatus{restarted(3, 5*time.Minute)}, "3 (5m ago)"},
		{"without last restart time", []corev1.ContainerStatus{restarted(2, 0)}, "2"},
		{"summed, latest restart", []corev1.ContainerStatus{restarted(1, time.Hour), restarted(2, 30*time.Second)}, "3 (30s ago)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := tablePod(corev1.PodRunning, nil)
			for i, st := range tc.statuses {
				st.Name = "c" + string(rune('0'+i))
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: st.Name})
				pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, st)
			}
			if got := podRow(pod, testNow)[3]; got != tc.want {
				t.Errorf("RESTARTS = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodRow(t *testing.T) {
	pod := tablePod(corev1.PodRunning, nil, running)
	want := []interface{}{"web", "1/1", "Running", "0", "90m", "<none>", "<none>", "<none>", "<none>"}
	if diff := cmp.Diff(want, podRow(pod, testNow)); diff != "" {
		t.Errorf("unscheduled row (-want +got):\n%s", diff)
	}

	pod.Spec.NodeName = "node-1"
	pod.Status.PodIP = "10.42.0.9"
	pod.Status.NominatedNodeName = "node-2"
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "lb/ready"}, {ConditionType: "dns/ready"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: "lb/ready", Status: corev1.ConditionTrue}}
	want = []interface{}{"web", "1/1", "Running", "0", "90m", "10.42.0.9", "node-1", "node-2", "1/2"}
	if diff := cmp.Diff(want, podRow(pod, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
