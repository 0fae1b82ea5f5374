package pods

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

const wait = 5 * time.Second

func TestPodRuns(t *testing.T) {
	pod := newPod("web", "", "")
	h := start(t, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "Running and Ready", func(st corev1.PodStatus) bool {
		return st.Phase == corev1.PodRunning && condition(st, corev1.PodReady) == corev1.ConditionTrue
	})
	if st.HostIP != "192.0.2.10" || st.StartTime == nil {
		t.Errorf("hostIP = %q, startTime = %v; want 192.0.2.10 and set", st.HostIP, st.StartTime)
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready || !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.RestartCount != 0 {
			t.Errorf("container %s = %+v, want running, ready, containerd:// ID, no restarts", cs.Name, cs)
		}
	}
	for _, typ := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized, corev1.ContainersReady, corev1.PodScheduled} {
		if got := condition(st, typ); got != corev1.ConditionTrue {
			t.Errorf("condition %s = %q, want True", typ, got)
		}
	}
	// Syncs that change nothing report nothing.
	n := len(h.rep.all(pod.UID))
	time.Sleep(100 * time.Millisecond)
	if got := len(h.rep.all(pod.UID)); got != n {
		t.Errorf("reports grew from %d to %d without a change", n, got)
	}
}

func TestRestartPolicy(t *testing.T) {
	tests := []struct {
		policy    corev1.RestartPolicy
		code      int
		restart   bool
		wantPhase corev1.PodPhase
	}{
		{corev1.RestartPolicyAlways, 0, true, corev1.PodRunning},
		{corev1.RestartPolicyAlways, 1, true, corev1.PodRunning},
		{corev1.RestartPolicyOnFailure, 0, false, corev1.PodSucceeded},
		{corev1.RestartPolicyOnFailure, 2, true, corev1.PodRunning},
		{corev1.RestartPolicyNever, 0, false, corev1.PodSucceeded},
		{corev1.RestartPolicyNever, 3, false, corev1.PodFailed},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%d", tc.policy, tc.code), func(t *testing.T) {
			rc := &runtime.ContainerStatus{State: runtime.ContainerExited, ExitCode: tc.code}
			if got := shouldRestart(tc.policy, rc); got != tc.restart {
				t.Errorf("shouldRestart = %v, want %v", got, tc.restart)
			}
			pod := newPod("p", fmt.Sprintf("exit %d", tc.code))
			pod.Spec.RestartPolicy = tc.policy
			h := start(t, Config{BackoffBase: time.Hour}, pod)
			st := h.rep.waitStatus(t, pod.UID, wait, "phase "+string(tc.wantPhase)+" after the first exit", func(st corev1.PodStatus) bool {
				cs := st.ContainerStatuses[0]
				if tc.restart {
					return st.Phase == tc.wantPhase && cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCrashLoopBackOff
				}
				return st.Phase == tc.wantPhase && cs.State.Terminated != nil
			})
			cs := st.ContainerStatuses[0]
			if tc.restart {
				// The first restart is immediate; the second exit backs off.
				if cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || int(cs.LastTerminationState.Terminated.ExitCode) != tc.code {
					t.Errorf("container = %+v, want restartCount 1 and lastState exit %d", cs, tc.code)
				}
				return
			}
			if cs.RestartCount != 0 || int(cs.State.Terminated.ExitCode) != tc.code {
				t.Errorf("container = %+v, want terminated with %d and no restart", cs, tc.code)
			}
			if rs, _ := h.fake.PodStatus(context.Background(), string(pod.UID)); rs == nil || rs.State != runtime.SandboxNotReady {
				t.Errorf("sandbox of finished pod = %+v, want stopped", rs)
			}
		})
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	pod := newPod("crash", "exit 1")
	h := start(t, Config{Now: clk.Now, BackoffMax: 40 * time.Second}, pod)
	for i, want := range []string{"10s", "20s", "40s", "40s"} {
		st := h.rep.waitStatus(t, pod.UID, wait, "back-off "+want, func(st corev1.PodStatus) bool {
			w := st.ContainerStatuses[0].State.Waiting
			return w != nil && w.Reason == reasonCrashLoopBackOff && int(st.ContainerStatuses[0].RestartCount) == i+1
		})
		cs := st.ContainerStatuses[0]
		wantMsg := fmt.Sprintf("back-off %s restarting failed container=c0 pod=crash_ns(%s)", want, pod.UID)
		if cs.State.Waiting.Message != wantMsg {
			t.Errorf("restart %d: message = %q, want %q", i+1, cs.State.Waiting.Message, wantMsg)
		}
		if st.Phase != corev1.PodRunning || condition(st, corev1.PodReady) != corev1.ConditionFalse {
			t.Errorf("restart %d: phase %s ready %s, want Running and not ready", i+1, st.Phase, condition(st, corev1.PodReady))
		}
		// Nothing restarts before the delay has passed.
		time.Sleep(50 * time.Millisecond)
		if got, _ := h.rep.last(pod.UID); got.ContainerStatuses[0].RestartCount != int32(i+1) {
			t.Fatalf("restart %d: restarted before its back-off ended", i+1)
		}
		clk.Add(40 * time.Second)
	}
}

func TestBackoff(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newBackoff(10*time.Second, 60*time.Second)
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 60 * time.Second, 60 * time.Second}
	for i, w := range want {
		until, d := b.next("c", i, t0)
		if d != w || !until.Equal(t0.Add(w)) {
			t.Errorf("failure %d: next = %v, %v; want %v", i, until, d, w)
		}
		if _, d2 := b.next("c", i, t0.Add(time.Second)); d2 != w {
			t.Errorf("failure %d seen again: delay %v, want %v", i, d2, w)
		}
	}
	b.reset("c")
	if _, d := b.next("c", 9, t0); d != 0 {
		t.Errorf("after reset: delay %v, want 0", d)
	}
}

func TestImagePullBackOff(t *testing.T) {
	fake := runtimetest.NewFake()
	pod := newPod("pull", "")
	pod.Spec.Containers[0].Image = "example.com/missing:1"
	h := start(t, Config{Runtime: fake, BackoffBase: 100 * time.Millisecond}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "ErrImagePull", func(st corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == reasonErrImagePull && strings.Contains(w.Message, "not found")
	})
	st := h.rep.waitStatus(t, pod.UID, wait, "ImagePullBackOff", func(st corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == reasonImagePullBackOff
	})
	if msg := st.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, `Back-off pulling image "example.com/missing:1"`) || !strings.Contains(msg, "not found") {
		t.Errorf("message = %q, want the back-off and the registry's answer", msg)
	}
	if st.Phase != corev1.PodPending {
		t.Errorf("phase = %s, want Pending", st.Phase)
	}
	fake.Pullable("example.com/missing:1")
	h.rep.waitStatus(t, pod.UID, wait, "Running after the image appeared", phaseIs(corev1.PodRunning))
}

func TestInitContainers(t *testing.T) {
	pod := newPod("init", "")
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "i0", Image: testImage, Command: []string{"sh", "-c", "exit 0"}},
		{Name: "i1", Image: testImage, Command: []string{"sleep", "1000"}},
	}
	h := start(t, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "second init container running", func(st corev1.PodStatus) bool {
		return st.InitContainerStatuses[1].State.Running != nil
	})
	if st.Phase != corev1.PodPending || condition(st, corev1.PodInitialized) != corev1.ConditionFalse {
		t.Errorf("phase %s initialized %s, want Pending, False", st.Phase, condition(st, corev1.PodInitialized))
	}
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != reasonPodInitializing {
		t.Errorf("app container state = %+v, want waiting PodInitializing", st.ContainerStatuses[0].State)
	}
	if !st.InitContainerStatuses[0].Ready || st.InitContainerStatuses[0].State.Terminated == nil {
		t.Errorf("first init container = %+v, want terminated and ready", st.InitContainerStatuses[0])
	}
	if err := h.fake.StopContainer(context.Background(), string(pod.UID), "i1", 0); err != nil {
		t.Fatal(err)
	}
	// Exit 137 fails the init container; with Always it restarts.
	h.rep.waitStatus(t, pod.UID, wait, "init container restarted", func(st corev1.PodStatus) bool {
		return st.InitContainerStatuses[1].RestartCount == 1
	})
}

func TestInitContainerFailsNever(t *testing.T) {
	pod := newPod("initfail", "")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.InitContainers = []corev1.Container{{Name: "i0", Image: testImage, Command: []string{"sh", "-c", "exit 4"}}}
	h := start(t, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "Failed", phaseIs(corev1.PodFailed))
	if st.ContainerStatuses[0].ContainerID != "" {
		t.Errorf("app container started after its init container failed: %+v", st.ContainerStatuses[0])
	}
}

func TestDeletion(t *testing.T) {
	pod := newPod("del", "")
	h := start(t, Config{}, pod)
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
	if _, err := h.fake.PodStatus(context.Background(), string(pod.UID)); err == nil {
		t.Error("pod still in the runtime after PodTerminated")
	}
}

func TestRemovedFromSet(t *testing.T) {
	keep, drop := newPod("keep", ""), newPod("drop", "")
	h := start(t, Config{}, keep, drop)
	h.rep.waitStatus(t, drop.UID, wait, "Running", phaseIs(corev1.PodRunning))
	h.m.SetPods([]*corev1.Pod{keep})
	deadline := time.Now().Add(wait)
	for {
		if _, err := h.fake.PodStatus(context.Background(), string(drop.UID)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dropped pod still in the runtime")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := h.rep.terminations(drop.UID); n != 0 {
		t.Errorf("PodTerminated reported %d times for a dropped pod, want 0", n)
	}
	if _, err := h.fake.PodStatus(context.Background(), string(keep.UID)); err != nil {
		t.Errorf("kept pod: %v", err)
	}
}

// TestAdoption starts a manager on a runtime that already runs a desired
// pod (second attempt) and an undesired one.
func TestAdoption(t *testing.T) {
	ctx := context.Background()
	fake := runtimetest.NewFake()
	fake.AddImage(testImage)
	pod, stray := newPod("adopt", ""), newPod("stray", "")
	for _, p := range []*corev1.Pod{pod, stray} {
		if _, err := fake.RunPodSandbox(ctx, &runtime.PodSpec{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name}); err != nil {
			t.Fatal(err)
		}
		if _, err := fake.StartContainer(ctx, string(p.UID), &runtime.ContainerSpec{Name: "c0", Image: testImage}); err != nil {
			t.Fatal(err)
		}
	}
	fake.StopContainer(ctx, string(pod.UID), "c0", 0)
	before, err := fake.StartContainer(ctx, string(pod.UID), &runtime.ContainerSpec{Name: "c0", Image: testImage})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, Config{Runtime: fake})
	time.Sleep(50 * time.Millisecond)
	if _, err := fake.PodStatus(ctx, string(stray.UID)); err != nil {
		t.Fatalf("stray pod removed before the first SetPods: %v", err)
	}
	h.m.SetPods([]*corev1.Pod{pod})
	st := h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	cs := st.ContainerStatuses[0]
	if cs.ContainerID != "containerd://"+before.ID || cs.RestartCount != 1 || !cs.State.Running.StartedAt.Time.Equal(before.StartedAt) {
		t.Errorf("adopted container = %+v, want ID %s, restartCount 1, startedAt %v", cs, before.ID, before.StartedAt)
	}
	if _, err := fake.PodStatus(ctx, string(stray.UID)); err == nil {
		t.Error("stray pod not removed")
	}
}

func TestFinishedPodNotRestartedAfterAdoption(t *testing.T) {
	ctx := context.Background()
	fake := runtimetest.NewFake()
	fake.AddImage(testImage)
	pod := newPod("done", "exit 0")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	fake.RunPodSandbox(ctx, &runtime.PodSpec{UID: string(pod.UID), Namespace: "ns", Name: pod.Name})
	fake.StartContainer(ctx, string(pod.UID), &runtime.ContainerSpec{Name: "c0", Image: testImage, Command: []string{"sh", "-c", "exit 0"}})
	fake.StopPod(ctx, string(pod.UID), 0)
	h := start(t, Config{Runtime: fake}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Succeeded", phaseIs(corev1.PodSucceeded))
	if rs, _ := fake.PodStatus(ctx, string(pod.UID)); rs.State != runtime.SandboxNotReady || rs.Containers[0].Attempt != 0 {
		t.Errorf("finished pod restarted: %+v", rs)
	}
}

func TestImageChangeRestartsContainer(t *testing.T) {
	pod := newPod("img", "")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	const newImage = "docker.io/minik/other:2"
	h.fake.AddImage(newImage)
	changed := bump(pod)
	changed.Spec.Containers[0].Image = newImage
	h.m.SetPods([]*corev1.Pod{changed})
	st := h.rep.waitStatus(t, pod.UID, wait, "running the new image", func(st corev1.PodStatus) bool {
		cs := st.ContainerStatuses[0]
		return cs.State.Running != nil && cs.RestartCount == 1
	})
	if st.ContainerStatuses[0].Image != newImage {
		t.Errorf("image = %q, want %q", st.ContainerStatuses[0].Image, newImage)
	}
}
