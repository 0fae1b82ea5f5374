//go:build integration

package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

func TestIntegrationAdoption(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "adopt-1", Namespace: "default", Name: "adoptee"}
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Command: []string{"sh", "-c", "echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; sleep 3600"}})
	before := runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, running)
	sb, _ := e.rt.PodStatus(testCtx(t), pod.UID)

	e.reconnect(t, nil) // the agent restarts

	pods, err := e.rt.ListPods(testCtx(t))
	if err != nil || len(pods) != 1 {
		t.Fatalf("ListPods after restart = %d pods, %v", len(pods), err)
	}
	got := pods[0]
	if got.UID != pod.UID || got.State != runtime.SandboxReady || got.NetNSPath != sb.NetNSPath {
		t.Errorf("adopted pod = %+v, want the same running sandbox %s", got, sb.NetNSPath)
	}
	c := got.Container("c")
	if c == nil || c.ID != before.ID || c.State != runtime.ContainerRunning || !c.StartedAt.Equal(before.StartedAt) {
		t.Fatalf("adopted container = %+v, want running %s started %v", c, before.ID, before.StartedAt)
	}
	again, err := e.rt.RunPodSandbox(testCtx(t), pod)
	if err != nil || again.NetNSPath != sb.NetNSPath {
		t.Errorf("RunPodSandbox after adoption = %+v, %v; want the same sandbox", again, err)
	}
	if _, code := e.exec(t, pod.UID, "c", "touch", "/tmp/go"); code != 0 {
		t.Fatal("touch failed")
	}
	waitFile(t, c.LogPath, "stdout F after")
	if err := e.rt.StopContainer(testCtx(t), pod.UID, "c", 0); err != nil {
		t.Fatal(err)
	}
	if c := runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 10*time.Second, exited); c.ExitCode != 137 {
		t.Errorf("adopted container exit = %d, want 137", c.ExitCode)
	}
}

func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want it to contain %q", path, data, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestIntegrationRemoveLeavesNothing(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "rm-1", Namespace: "default", Name: "gone", Volumes: []runtime.Volume{{Name: "scratch"}}}
	e.runPod(t, pod,
		&runtime.ContainerSpec{Name: "a", Command: []string{"sleep", "3600"}, Mounts: []runtime.Mount{{Volume: "scratch", Path: "/s"}}},
		&runtime.ContainerSpec{Name: "b", Command: []string{"sh", "-c", "exit 1"}})
	runtimetest.WaitContainer(t, e.rt, pod.UID, "b", 20*time.Second, exited)
	if _, err := e.rt.StartContainer(testCtx(t), pod.UID, &runtime.ContainerSpec{Name: "b", Image: e.image, Command: []string{"sh", "-c", "exit 1"}}); err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(testCtx(t), e.cfg.Namespace)
	before := e.counts(t, ctx)
	if before.containers != 4 || before.snapshots < 3 || before.tasks < 2 {
		t.Errorf("before removal: %+v", before)
	}
	if err := e.rt.RemovePod(testCtx(t), pod.UID); err != nil {
		t.Fatal(err)
	}
	after := e.counts(t, ctx)
	if after.containers != 0 || after.tasks != 0 || after.snapshots != before.snapshots-3 {
		t.Errorf("after removal: %+v, want no containers or tasks and 3 fewer snapshots than %d", after, before.snapshots)
	}
	for _, dir := range []string{"sandboxes/rm-1", "pods/default_gone_rm-1"} {
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, dir)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (%v)", dir, err)
		}
	}
	if _, err := e.rt.PodStatus(testCtx(t), pod.UID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("PodStatus after RemovePod = %v", err)
	}
}

type counts struct{ containers, tasks, snapshots int }

func (e *env) counts(t *testing.T, ctx context.Context) counts {
	t.Helper()
	cl := e.rt.Client()
	var n counts
	ctrs, err := cl.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.containers = len(ctrs)
	for _, c := range ctrs {
		if _, err := c.Task(ctx, nil); err == nil {
			n.tasks++
		}
	}
	err = cl.SnapshotService("overlayfs").Walk(ctx, func(context.Context, snapshots.Info) error { n.snapshots++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIntegrationGC(t *testing.T) {
	e := newEnv(t)
	keep := &runtime.PodSpec{UID: "gc-keep", Namespace: "default", Name: "keep"}
	drop := &runtime.PodSpec{UID: "gc-drop", Namespace: "default", Name: "drop"}
	e.runPod(t, keep, &runtime.ContainerSpec{Name: "c", Command: []string{"sleep", "3600"}})
	e.runPod(t, drop, &runtime.ContainerSpec{Name: "c", Command: []string{"sleep", "3600"}})
	if err := e.rt.GC(testCtx(t), func(uid string) bool { return uid == keep.UID }); err != nil {
		t.Fatal(err)
	}
	pods, _ := e.rt.ListPods(testCtx(t))
	if len(pods) != 1 || pods[0].UID != keep.UID || pods[0].Container("c").State != runtime.ContainerRunning {
		t.Errorf("after GC: %+v, want only %s, still running", pods, keep.UID)
	}
}

func TestIntegrationPull(t *testing.T) {
	e := newEnv(t)
	reg := runtimetest.NewRegistry(t)
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Push(t, "test/busybox:1", img)
	ctx := testCtx(t)
	if err := e.rt.Pull(ctx, ref, runtime.PullNever); !errors.Is(err, runtime.ErrImageNeverPull) {
		t.Errorf("Pull(Never) before pull = %v, want ErrImageNeverPull", err)
	}
	if err := e.rt.Pull(ctx, ref, runtime.PullIfNotPresent); err != nil {
		t.Fatalf("Pull(IfNotPresent) = %v", err)
	}
	for _, p := range []runtime.PullPolicy{runtime.PullNever, runtime.PullAlways} {
		if err := e.rt.Pull(ctx, ref, p); err != nil {
			t.Errorf("Pull(%s) after pull = %v", p, err)
		}
	}
	err = e.rt.Pull(ctx, reg.Host+"/test/missing:1", runtime.PullIfNotPresent)
	if !errors.Is(err, runtime.ErrImagePull) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Pull(missing) = %v, want ErrImagePull with the registry's answer", err)
	}
	pod := &runtime.PodSpec{UID: "pull-1", Namespace: "default", Name: "pulled"}
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Image: ref, PullPolicy: runtime.PullAlways, Command: []string{"sh", "-c", "exit 5"}})
	if c := runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, exited); c.ExitCode != 5 {
		t.Errorf("pulled container exit = %d, want 5", c.ExitCode)
	}
}

func TestIntegrationImportDockerArchive(t *testing.T) {
	e := newEnv(t)
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	path, err := runtimetest.WriteDockerArchive(e.dir, "docker.io/library/dockerbox:1", img)
	if err != nil {
		t.Fatal(err)
	}
	names, err := e.rt.ImportTar(testCtx(t), path)
	if err != nil || len(names) != 1 || names[0] != "docker.io/library/dockerbox:1" {
		t.Fatalf("ImportTar = %q, %v", names, err)
	}
	pod := &runtime.PodSpec{UID: "docker-1", Namespace: "default", Name: "d"}
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Image: "dockerbox:1", PullPolicy: runtime.PullNever, Command: []string{"sh"}, Args: []string{"-c", "exit 4"}})
	if c := runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, exited); c.ExitCode != 4 {
		t.Errorf("exit = %d, want 4", c.ExitCode)
	}
	// Args without a command follow the image's entrypoint, which busybox
	// lacks: "-c" is not a program.
	_, err = e.rt.StartContainer(testCtx(t), pod.UID, &runtime.ContainerSpec{Name: "args", Image: "dockerbox:1", Args: []string{"-c", "exit 4"}})
	if err == nil {
		t.Error("StartContainer with args only and no entrypoint succeeded")
	}
}

func TestIntegrationResources(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "res-1", Namespace: "default", Name: "res"}
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Command: []string{"sleep", "3600"},
		Resources: runtime.Resources{CPURequestMilli: 250, CPULimitMilli: 500, MemoryLimitBytes: 64 << 20}})
	c := runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, running)
	cg := filepath.Join(e.cfg.CgroupParent, "pod"+pod.UID, c.ID)
	want := map[string]string{
		"/sys/fs/cgroup/memory" + cg + "/memory.limit_in_bytes": fmt.Sprint(64 << 20),
		"/sys/fs/cgroup/cpu" + cg + "/cpu.cfs_quota_us":         "50000",
		"/sys/fs/cgroup/cpu" + cg + "/cpu.shares":               "256",
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		// cgroup v2: the same limits in the unified hierarchy (shares 256
		// map to weight 10).
		want = map[string]string{
			"/sys/fs/cgroup" + cg + "/memory.max": fmt.Sprint(64 << 20),
			"/sys/fs/cgroup" + cg + "/cpu.max":    "50000 100000",
			"/sys/fs/cgroup" + cg + "/cpu.weight": "10",
		}
	}
	for path, w := range want {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("cgroup limits: %v", err)
		}
		if got := strings.TrimSpace(string(data)); got != w {
			t.Errorf("%s = %s, want %s", path, got, w)
		}
	}
}

func TestIntegrationContainerdRestart(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "crash-1", Namespace: "default", Name: "survivor"}
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Command: []string{"sleep", "3600"}})
	before := runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, running)
	pid := daemonPID(t, e.dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.rt.PodStatus(testCtx(t), pod.UID)
		if err == nil && daemonPID(t, e.dir) != pid {
			if c := st.Container("c"); c == nil || c.ID != before.ID || c.State != runtime.ContainerRunning {
				t.Errorf("after containerd restart: %+v, want %s running", c, before.ID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not come back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// daemonPID finds the containerd process using dir's config.
func daemonPID(t *testing.T, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		var pid int
		if _, err := fmt.Sscan(ent.Name(), &pid); err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if strings.Contains(string(cmd), filepath.Join(dir, "containerd", "config.toml")) {
			return pid
		}
	}
	return 0
}
