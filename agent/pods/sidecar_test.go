package pods

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/runtime"
)

func always() *corev1.ContainerRestartPolicy {
	p := corev1.ContainerRestartPolicyAlways
	return &p
}

func execProbe(threshold int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}}, FailureThreshold: threshold}
}

// A sidecar holds back the app containers until its startup probe passes,
// then runs beside them; the pod is Running and Ready with it.
func TestSidecarStartsBeforeAppContainers(t *testing.T) {
	clk := &clock{now: time.Now()}
	fake := &probeFake{Fake: fakeRuntime()}
	fake.code.Store(1)
	pod := newPod("sidecar", "")
	pod.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: testImage, RestartPolicy: always(), StartupProbe: execProbe(100)}}
	h := start(t, Config{Runtime: fake, Now: clk.Now}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "sidecar running", func(st corev1.PodStatus) bool {
		return st.InitContainerStatuses[0].State.Running != nil
	})
	time.Sleep(50 * time.Millisecond) // several syncs
	st, _ = h.rep.last(pod.UID)
	if cs := st.InitContainerStatuses[0]; cs.Started == nil || *cs.Started || cs.Ready {
		t.Errorf("sidecar before its startup probe passed = started %v ready %v, want neither", cs.Started, cs.Ready)
	}
	if st.Phase != corev1.PodPending || condition(st, corev1.PodInitialized) != corev1.ConditionFalse {
		t.Errorf("phase %s initialized %s, want Pending, False", st.Phase, condition(st, corev1.PodInitialized))
	}
	if st.ContainerStatuses[0].ContainerID != "" {
		t.Fatalf("app container started before the sidecar did: %+v", st.ContainerStatuses[0])
	}
	fake.code.Store(0)
	clk.Add(10 * time.Second)
	st = h.rep.waitStatus(t, pod.UID, wait, "Running and Ready", readyIs(corev1.ConditionTrue))
	if cs := st.InitContainerStatuses[0]; cs.State.Running == nil || !cs.Ready || !*cs.Started {
		t.Errorf("sidecar = %+v, want running, started and ready", cs)
	}
	if condition(st, corev1.PodInitialized) != corev1.ConditionTrue || st.ContainerStatuses[0].State.Running == nil {
		t.Errorf("initialized %s, app container %+v; want True, running", condition(st, corev1.PodInitialized), st.ContainerStatuses[0].State)
	}
	// A sidecar that exits restarts, whatever the pod's policy, without
	// stopping the app container.
	if err := fake.StopContainer(context.Background(), string(pod.UID), "proxy", 0); err != nil {
		t.Fatal(err)
	}
	st = h.rep.waitStatus(t, pod.UID, wait, "sidecar restarted", func(st corev1.PodStatus) bool {
		return st.InitContainerStatuses[0].RestartCount == 1 && st.InitContainerStatuses[0].State.Running != nil
	})
	if st.ContainerStatuses[0].RestartCount != 0 || st.ContainerStatuses[0].State.Running == nil {
		t.Errorf("app container = %+v, want still running its first attempt", st.ContainerStatuses[0])
	}
}

// A pod whose app containers completed is Succeeded though its sidecar
// still ran.
func TestSidecarDoesNotKeepPodRunning(t *testing.T) {
	pod := newPod("sidecar-job", "exit 0")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: testImage, RestartPolicy: always()}}
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Succeeded", phaseIs(corev1.PodSucceeded))
}

// The startup probe holds back readiness; failing it failureThreshold
// times restarts the container.
func TestStartupProbe(t *testing.T) {
	clk := &clock{now: time.Now()}
	fake := &probeFake{Fake: fakeRuntime()}
	fake.code.Store(1)
	pod := newPod("startup", "")
	pod.Spec.Containers[0].StartupProbe = execProbe(2)
	h := start(t, Config{Runtime: fake, Now: clk.Now}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "Running, not ready", readyIs(corev1.ConditionFalse))
	if cs := st.ContainerStatuses[0]; cs.Started == nil || *cs.Started {
		t.Errorf("started = %v before the startup probe passed, want false", cs.Started)
	}
	// The probe runs every 10 s of the clock from the container's start.
	h.rep.waitStatus(t, pod.UID, wait, "restarted after two failures", func(st corev1.PodStatus) bool {
		clk.Add(5 * time.Second)
		return st.ContainerStatuses[0].RestartCount >= 1
	})
	if ev := h.rep.eventsOf(pod.UID); !containsText(ev, "Warning Unhealthy: Startup probe failed") {
		t.Errorf("events %v, want a failed startup probe", ev)
	}
	fake.code.Store(0)
	clk.Add(10 * time.Second)
	st = h.rep.waitStatus(t, pod.UID, wait, "ready once the startup probe passed", readyIs(corev1.ConditionTrue))
	if cs := st.ContainerStatuses[0]; !*cs.Started {
		t.Errorf("started = false after the startup probe passed")
	}
}

// stopOrder records the order in which containers are stopped.
type stopOrder struct {
	*probeFake
	stopped []string
}

func (f *stopOrder) StopContainer(ctx context.Context, podUID, name string, grace time.Duration) error {
	f.stopped = append(f.stopped, name)
	return f.probeFake.StopContainer(ctx, podUID, name, grace)
}

// On deletion the app containers stop before the sidecars, and the
// sidecars in reverse order.
func TestSidecarsStopLast(t *testing.T) {
	fake := &stopOrder{probeFake: &probeFake{Fake: fakeRuntime()}}
	pod := newPod("order", "")
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "s0", Image: testImage, RestartPolicy: always()},
		{Name: "s1", Image: testImage, RestartPolicy: always()},
	}
	h := start(t, Config{Runtime: fake}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	del := bump(pod)
	now := metav1.Now()
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, ptr(int64(1))
	h.m.SetPods([]*corev1.Pod{del})
	deadline := time.Now().Add(wait)
	for h.rep.terminations(pod.UID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no PodTerminated")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.stop(t)
	if want := []string{"c0", "s1", "s0"}; !equalStrings(fake.stopped, want) {
		t.Errorf("stop order = %v, want %v", fake.stopped, want)
	}
}

func containsText(list []string, text string) bool {
	for _, s := range list {
		if strings.Contains(s, text) {
			return true
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var _ runtime.Execer = (*stopOrder)(nil)
