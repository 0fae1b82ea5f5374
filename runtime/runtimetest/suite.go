package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/minik-dev/minik/runtime"
)

// Harness is a runtime under test with an image present in it whose
// busybox applets (sh, sleep) the suite runs.
type Harness struct {
	Runtime runtime.Runtime
	Image   string
}

// Suite checks that a runtime keeps the runtime.Runtime contract. newRuntime
// is called once per subtest and must clean up after itself.
func Suite(t *testing.T, newRuntime func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"SandboxIdempotent", testSandboxIdempotent},
		{"InvalidPod", testInvalidPod},
		{"UnknownPod", testUnknownPod},
		{"ExitAndRestart", testExitAndRestart},
		{"StopContainer", testStopContainer},
		{"PullNever", testPullNever},
		{"StopAndRemovePod", testStopAndRemovePod},
		{"ResizeContainer", testResizeContainer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newRuntime(t)) })
	}
}

var suiteSeq int

func newPod(name string) *runtime.PodSpec {
	suiteSeq++
	return &runtime.PodSpec{UID: fmt.Sprintf("suite-%s-%d-%d", name, time.Now().UnixNano()%1e6, suiteSeq), Namespace: "suite", Name: name}
}

func suiteCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func runPod(t *testing.T, h Harness, pod *runtime.PodSpec) {
	t.Helper()
	if _, err := h.Runtime.RunPodSandbox(suiteCtx(t), pod); err != nil {
		t.Fatalf("RunPodSandbox(%s) = %v", pod.UID, err)
	}
	t.Cleanup(func() { h.Runtime.RemovePod(context.Background(), pod.UID) })
}

// WaitContainer polls the pod until cond holds for the named container or
// timeout passes, and returns its last status.
func WaitContainer(t testing.TB, rt runtime.Pods, uid, name string, timeout time.Duration, cond func(*runtime.ContainerStatus) bool) *runtime.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := rt.PodStatus(context.Background(), uid)
		if err != nil {
			t.Fatalf("PodStatus(%s) = %v", uid, err)
		}
		if c := st.Container(name); c != nil && cond(c) {
			return c
		} else if time.Now().After(deadline) {
			t.Fatalf("container %s/%s: condition not met in %v; last %+v", uid, name, timeout, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exited(c *runtime.ContainerStatus) bool { return c.State == runtime.ContainerExited }

func testSandboxIdempotent(t *testing.T, h Harness) {
	pod := newPod("idem")
	runPod(t, h, pod)
	st, err := h.Runtime.RunPodSandbox(suiteCtx(t), pod)
	if err != nil {
		t.Fatalf("second RunPodSandbox = %v", err)
	}
	if st.State != runtime.SandboxReady || st.UID != pod.UID || st.Name != pod.Name || st.NetNSPath == "" {
		t.Errorf("RunPodSandbox = %+v, want Ready %s with a netns", st, pod.UID)
	}
	pods, err := h.Runtime.ListPods(suiteCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pods {
		if p.UID == pod.UID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("ListPods has pod %s %d times, want 1", pod.UID, n)
	}
}

func testInvalidPod(t *testing.T, h Harness) {
	_, err := h.Runtime.RunPodSandbox(suiteCtx(t), &runtime.PodSpec{Name: "x", Namespace: "suite"})
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("RunPodSandbox(no uid) = %v, want ErrInvalid", err)
	}
	pod := newPod("inv")
	runPod(t, h, pod)
	_, err = h.Runtime.StartContainer(suiteCtx(t), pod.UID, &runtime.ContainerSpec{Name: "c"})
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("StartContainer(no image) = %v, want ErrInvalid", err)
	}
}

func testUnknownPod(t *testing.T, h Harness) {
	ctx := suiteCtx(t)
	if _, err := h.Runtime.PodStatus(ctx, "suite-missing"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("PodStatus = %v, want ErrNotFound", err)
	}
	if err := h.Runtime.StopPod(ctx, "suite-missing", 0); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("StopPod = %v, want ErrNotFound", err)
	}
	_, err := h.Runtime.StartContainer(ctx, "suite-missing", &runtime.ContainerSpec{Name: "c", Image: h.Image})
	if !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("StartContainer = %v, want ErrNotFound", err)
	}
	if err := h.Runtime.RemovePod(ctx, "suite-missing"); err != nil {
		t.Errorf("RemovePod = %v, want nil", err)
	}
}

func testExitAndRestart(t *testing.T, h Harness) {
	pod := newPod("exit")
	runPod(t, h, pod)
	spec := &runtime.ContainerSpec{Name: "job", Image: h.Image, Command: []string{"sh", "-c", "exit 3"}}
	for attempt := 0; attempt < 3; attempt++ {
		st, err := h.Runtime.StartContainer(suiteCtx(t), pod.UID, spec)
		if err != nil {
			t.Fatalf("StartContainer #%d = %v", attempt, err)
		}
		if st.Attempt != attempt {
			t.Errorf("StartContainer #%d attempt = %d", attempt, st.Attempt)
		}
		c := WaitContainer(t, h.Runtime, pod.UID, "job", 20*time.Second, exited)
		if c.ExitCode != 3 || c.Reason != "Error" || c.Attempt != attempt || c.FinishedAt.IsZero() {
			t.Errorf("status #%d = %+v, want exit 3, Error, attempt %d, finish time", attempt, c, attempt)
		}
	}
}

func testStopContainer(t *testing.T, h Harness) {
	pod := newPod("stop")
	runPod(t, h, pod)
	spec := &runtime.ContainerSpec{Name: "sleeper", Image: h.Image, Command: []string{"sleep", "3600"}}
	first, err := h.Runtime.StartContainer(suiteCtx(t), pod.UID, spec)
	if err != nil {
		t.Fatal(err)
	}
	WaitContainer(t, h.Runtime, pod.UID, "sleeper", 20*time.Second, func(c *runtime.ContainerStatus) bool { return c.State == runtime.ContainerRunning })
	again, err := h.Runtime.StartContainer(suiteCtx(t), pod.UID, spec)
	if err != nil || again.ID != first.ID {
		t.Errorf("StartContainer while running = %+v, %v; want the running attempt %s", again, err, first.ID)
	}
	if err := h.Runtime.StopContainer(suiteCtx(t), pod.UID, "sleeper", 0); err != nil {
		t.Fatalf("StopContainer = %v", err)
	}
	c := WaitContainer(t, h.Runtime, pod.UID, "sleeper", 20*time.Second, exited)
	if c.ExitCode == 0 {
		t.Errorf("killed container exit code = 0")
	}
	if err := h.Runtime.StopContainer(suiteCtx(t), pod.UID, "sleeper", 0); err != nil {
		t.Errorf("StopContainer on exited = %v, want nil", err)
	}
	if err := h.Runtime.StopContainer(suiteCtx(t), pod.UID, "nope", 0); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("StopContainer(unknown) = %v, want ErrNotFound", err)
	}
}

func testPullNever(t *testing.T, h Harness) {
	pod := newPod("never")
	runPod(t, h, pod)
	_, err := h.Runtime.StartContainer(suiteCtx(t), pod.UID, &runtime.ContainerSpec{
		Name: "c", Image: "127.0.0.1:1/absent:1", PullPolicy: runtime.PullNever})
	if !errors.Is(err, runtime.ErrImageNeverPull) {
		t.Errorf("StartContainer(Never, absent) = %v, want ErrImageNeverPull", err)
	}
	_, err = h.Runtime.StartContainer(suiteCtx(t), pod.UID, &runtime.ContainerSpec{
		Name: "c", Image: "127.0.0.1:1/absent:1"})
	if !errors.Is(err, runtime.ErrImagePull) {
		t.Errorf("StartContainer(IfNotPresent, unreachable) = %v, want ErrImagePull", err)
	}
}

func testStopAndRemovePod(t *testing.T, h Harness) {
	pod := newPod("rm")
	runPod(t, h, pod)
	ctx := suiteCtx(t)
	for _, n := range []string{"a", "b"} {
		if _, err := h.Runtime.StartContainer(ctx, pod.UID, &runtime.ContainerSpec{Name: n, Image: h.Image, Command: []string{"sleep", "3600"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Runtime.StopPod(ctx, pod.UID, 0); err != nil {
		t.Fatalf("StopPod = %v", err)
	}
	st, err := h.Runtime.PodStatus(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtime.SandboxNotReady || len(st.Containers) != 2 {
		t.Errorf("after StopPod: %+v, want NotReady with 2 containers", st)
	}
	for _, c := range st.Containers {
		if c.State != runtime.ContainerExited {
			t.Errorf("after StopPod container %s = %s, want Exited", c.Name, c.State)
		}
	}
	_, err = h.Runtime.StartContainer(ctx, pod.UID, &runtime.ContainerSpec{Name: "a", Image: h.Image})
	if !errors.Is(err, runtime.ErrSandboxNotReady) {
		t.Errorf("StartContainer in stopped pod = %v, want ErrSandboxNotReady", err)
	}
	if err := h.Runtime.RemovePod(ctx, pod.UID); err != nil {
		t.Fatalf("RemovePod = %v", err)
	}
	if _, err := h.Runtime.PodStatus(ctx, pod.UID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("PodStatus after RemovePod = %v, want ErrNotFound", err)
	}
}

// testResizeContainer checks the errors of a runtime.Resizer, and that a
// resized container keeps running as the same attempt.
func testResizeContainer(t *testing.T, h Harness) {
	rz, ok := h.Runtime.(runtime.Resizer)
	if !ok {
		t.Skip("the runtime cannot resize containers")
	}
	pod := newPod("resize")
	runPod(t, h, pod)
	spec := &runtime.ContainerSpec{Name: "sleeper", Image: h.Image, Command: []string{"sleep", "3600"},
		Resources: runtime.Resources{CPURequestMilli: 50, CPULimitMilli: 100, MemoryLimitBytes: 64 << 20}}
	first, err := h.Runtime.StartContainer(suiteCtx(t), pod.UID, spec)
	if err != nil {
		t.Fatal(err)
	}
	WaitContainer(t, h.Runtime, pod.UID, "sleeper", 20*time.Second, func(c *runtime.ContainerStatus) bool { return c.State == runtime.ContainerRunning })
	bigger := runtime.Resources{CPURequestMilli: 100, CPULimitMilli: 200, MemoryLimitBytes: 96 << 20}
	if err := rz.ResizeContainer(suiteCtx(t), pod.UID, "sleeper", bigger); err != nil {
		t.Fatalf("ResizeContainer = %v", err)
	}
	rs, err := h.Runtime.PodStatus(suiteCtx(t), pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	if c := rs.Container("sleeper"); c == nil || c.State != runtime.ContainerRunning || c.ID != first.ID {
		t.Errorf("after the resize: %+v, want attempt %s running", c, first.ID)
	}
	if err := rz.ResizeContainer(suiteCtx(t), pod.UID, "nope", bigger); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("ResizeContainer(unknown) = %v, want ErrNotFound", err)
	}
	if err := h.Runtime.StopContainer(suiteCtx(t), pod.UID, "sleeper", 0); err != nil {
		t.Fatal(err)
	}
	WaitContainer(t, h.Runtime, pod.UID, "sleeper", 20*time.Second, exited)
	if err := rz.ResizeContainer(suiteCtx(t), pod.UID, "sleeper", bigger); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("ResizeContainer(exited) = %v, want ErrInvalid", err)
	}
}
