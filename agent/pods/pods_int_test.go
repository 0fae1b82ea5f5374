//go:build integration

package pods

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const intWait = time.Minute

// startInt runs a Manager on the environment's containerd, imports the
// images directory through it, then hands it pods.
func startInt(t *testing.T, e *intEnv, cfg Config, pods ...*corev1.Pod) *harness {
	cfg.Runtime = e.rt
	cfg.SyncPeriod = 200 * time.Millisecond
	h := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), intWait)
	defer cancel()
	if err := h.m.ImportImages(ctx, e.imagesDir); err != nil {
		t.Fatalf("ImportImages = %v", err)
	}
	h.m.SetPods(pods)
	return h
}

func nn(p *corev1.Pod) types.NamespacedName {
	return types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
}

func (h *harness) exec(t *testing.T, pod *corev1.Pod, ctr string, cmd ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), intWait)
	defer cancel()
	var out syncBuffer
	code, err := h.m.Exec(ctx, nn(pod), ctr, cmd, ExecStreams{Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("Exec(%q) = %v", cmd, err)
	}
	return out.String(), code
}

func (h *harness) logs(t *testing.T, pod *corev1.Pod, ctr string, opts *corev1.PodLogOptions) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), intWait)
	defer cancel()
	var out bytes.Buffer
	if err := h.m.Logs(ctx, nn(pod), ctr, opts, &out); err != nil {
		t.Fatalf("Logs(%s) = %v", ctr, err)
	}
	return out.String()
}

func allRunning(st corev1.PodStatus) bool {
	if st.Phase != corev1.PodRunning || len(st.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready {
			return false
		}
	}
	return true
}

func TestIntegrationSharedEmptyDir(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("shared", "echo hello > /data/msg && echo written && exec sleep 1000",
		"until [ -f /data/msg ]; do sleep 0.1; done; cat /data/msg; exec sleep 1000")
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		c.Env = []corev1.EnvVar{fieldEnv("POD_NAME", "metadata.name"), fieldEnv("NODE", "spec.nodeName")}
	}
	h := startInt(t, e, Config{ClusterDNS: []string{"10.43.0.10"}}, pod)
	st := h.rep.waitStatus(t, pod.UID, intWait, "both containers running", allRunning)
	for _, cs := range st.ContainerStatuses {
		if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.RestartCount != 0 || cs.State.Running.StartedAt.IsZero() {
			t.Errorf("container %s = %+v", cs.Name, cs)
		}
	}
	if condition(st, corev1.PodReady) != corev1.ConditionTrue || st.HostIP != "192.0.2.10" {
		t.Errorf("ready %s hostIP %q", condition(st, corev1.PodReady), st.HostIP)
	}
	waitLogs(t, h, pod, "c1", "hello\n")
	if got := h.logs(t, pod, "c0", &corev1.PodLogOptions{Timestamps: true}); !strings.HasSuffix(got, "Z written\n") {
		t.Errorf("logs with timestamps = %q", got)
	}
	if out, code := h.exec(t, pod, "c0", "cat", "/data/msg"); out != "hello\n" || code != 0 {
		t.Errorf("exec cat = %q, %d", out, code)
	}
	if out, _ := h.exec(t, pod, "c1", "sh", "-c", "echo $POD_NAME $NODE; hostname"); out != "shared node1\nshared\n" {
		t.Errorf("env and hostname = %q", out)
	}
	if out, _ := h.exec(t, pod, "c0", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.43.0.10") || !strings.Contains(out, "search ns.svc.cluster.local") {
		t.Errorf("resolv.conf = %q", out)
	}
	if _, code := h.exec(t, pod, "c0", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("exec exit code = %d, want 5", code)
	}
}

func waitLogs(t *testing.T, h *harness, pod *corev1.Pod, ctr, want string) {
	t.Helper()
	deadline := time.Now().Add(intWait)
	for {
		got := h.logs(t, pod, ctr, nil)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s = %q, want %q", ctr, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestIntegrationCrashLoop(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("crash", "echo run; exit 3")
	began := time.Now()
	h := startInt(t, e, Config{BackoffBase: 300 * time.Millisecond, BackoffMax: time.Second}, pod)
	st := h.rep.waitStatus(t, pod.UID, intWait, "CrashLoopBackOff after two restarts", func(st corev1.PodStatus) bool {
		cs := st.ContainerStatuses[0]
		return cs.RestartCount >= 2 && cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCrashLoopBackOff
	})
	cs := st.ContainerStatuses[0]
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 3 || lt.Reason != "Error" {
		t.Errorf("lastState = %+v, want terminated with 3", cs.LastTerminationState)
	}
	if !strings.Contains(cs.State.Waiting.Message, "restarting failed container=c0 pod=crash_ns(") {
		t.Errorf("message = %q", cs.State.Waiting.Message)
	}
	if got := h.logs(t, pod, "c0", &corev1.PodLogOptions{Previous: true}); got != "run\n" {
		t.Errorf("previous logs = %q, want %q", got, "run\n")
	}
	// The first restart is immediate, the second waits 300ms.
	if d := time.Since(began); d < 300*time.Millisecond {
		t.Errorf("two restarts took %v, want at least the 300ms back-off", d)
	}
}

func TestIntegrationGracefulDeletion(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("graceful", `trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 0.1; done`)
	h := startInt(t, e, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, intWait, "Running", allRunning)
	waitLogs(t, h, pod, "c0", "up\n")
	del := bump(pod)
	now := metav1.Now()
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, ptr(int64(30))
	began := time.Now()
	h.m.SetPods([]*corev1.Pod{del})
	for h.rep.terminations(pod.UID) == 0 {
		if time.Since(began) > intWait {
			t.Fatal("no PodTerminated")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("termination took %v: SIGTERM was not honoured", d)
	}
	pods, err := e.rt.ListPods(context.Background())
	if err != nil || len(pods) != 0 {
		t.Errorf("ListPods after termination = %v, %v; want none", pods, err)
	}
}

func TestIntegrationAdoption(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("adopted", "exec sleep 1000")
	cfg := Config{Runtime: e.rt, SyncPeriod: 200 * time.Millisecond}
	first := startInt(t, e, cfg, pod)
	st := first.rep.waitStatus(t, pod.UID, intWait, "Running", allRunning)
	before := st.ContainerStatuses[0]
	first.stop(t)

	second := start(t, cfg, pod)
	got := second.rep.waitStatus(t, pod.UID, intWait, "Running", allRunning).ContainerStatuses[0]
	if got.ContainerID != before.ContainerID || got.RestartCount != 0 || !got.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) {
		t.Errorf("after restart container = %+v, want %s started at %v without restarts", got, before.ContainerID, before.State.Running.StartedAt)
	}
}

func TestIntegrationFollowLogs(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("follow", "echo a; sleep 1; echo b")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	h := startInt(t, e, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, intWait, "Running", allRunning)
	got := h.logs(t, pod, "c0", &corev1.PodLogOptions{Follow: true})
	if got != "a\nb\n" {
		t.Errorf("followed logs = %q, want %q", got, "a\nb\n")
	}
	st := h.rep.waitStatus(t, pod.UID, intWait, "Succeeded", phaseIs(corev1.PodSucceeded))
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "Completed" || term.FinishedAt.IsZero() {
		t.Errorf("state = %+v, want terminated Completed", st.ContainerStatuses[0].State)
	}
	// A finished pod's logs stay readable until it is deleted.
	if got := h.logs(t, pod, "c0", &corev1.PodLogOptions{TailLines: ptr(int64(1))}); got != "b\n" {
		t.Errorf("tail of finished pod = %q, want %q", got, "b\n")
	}
}
