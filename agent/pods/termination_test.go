package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

func TestTerminationMessageFromFile(t *testing.T) {
	pod := newPod("termmsg", "")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log"
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	spec := h.fake.ContainerSpec(string(pod.UID), "c0")
	var mount *runtime.Mount
	for i := range spec.Mounts {
		if spec.Mounts[i].Path == "/dev/termination-log" {
			mount = &spec.Mounts[i]
		}
	}
	if mount == nil || mount.ReadOnly {
		t.Fatalf("mounts = %+v, want a writable one at /dev/termination-log", spec.Mounts)
	}
	var src string
	for _, v := range h.fake.PodSpec(string(pod.UID)).Volumes {
		if v.Name == mount.Volume {
			src = filepath.Join(v.HostPath, mount.SubPath)
		}
	}
	if !strings.HasPrefix(src, h.m.cfg.DataDir) {
		t.Fatalf("message file %q is not in the node's data dir", src)
	}
	fi, err := os.Stat(src)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o666 {
		t.Fatalf("message file: %v, %v; want a regular file writable by all", fi, err)
	}
	msg := "bye\n" + strings.Repeat("x", 5000)
	if err := os.WriteFile(src, []byte(msg), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := h.fake.StopContainer(context.Background(), string(pod.UID), "c0", 0); err != nil {
		t.Fatal(err)
	}
	st := h.rep.waitStatus(t, pod.UID, wait, "Failed", phaseIs(corev1.PodFailed))
	term := st.ContainerStatuses[0].State.Terminated
	if term == nil || term.Message != msg[:maxMessageBytes] {
		t.Errorf("terminated = %+v, want the first %d bytes of the file as message", term, maxMessageBytes)
	}
}

// writeLog writes a CRI log of lines for attempt 0 of a container of pod,
// where the Fake says its log is.
func writeLog(t *testing.T, dataDir string, pod *corev1.Pod, ctr string, lines []string) {
	t.Helper()
	path := filepath.Join(dataDir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), ctr, "0.log")
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("2026-01-02T03:04:05.000000000Z stdout F " + l + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTerminationMessageFallbackToLogs(t *testing.T) {
	pod := newPod("termlogs", "exit 1", "exit 1", "exit 0", "exit 1")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		c.TerminationMessagePath = "/dev/termination-log"
		c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	}
	pod.Spec.Containers[3].TerminationMessagePolicy = corev1.TerminationMessageReadFile
	dir := t.TempDir()
	var short, long []string
	for i := 1; i <= 100; i++ {
		short = append(short, fmt.Sprintf("line %03d", i))
		long = append(long, fmt.Sprintf("%03d", i)+strings.Repeat("y", 96))
	}
	writeLog(t, dir, pod, "c0", short)
	writeLog(t, dir, pod, "c1", long)
	writeLog(t, dir, pod, "c2", short)
	writeLog(t, dir, pod, "c3", short)
	h := start(t, Config{DataDir: dir}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "Failed", phaseIs(corev1.PodFailed))
	want := []string{
		strings.Join(short[20:], "\n") + "\n",                        // the last 80 lines
		tail(strings.Join(long[20:], "\n")+"\n", maxMessageLogBytes), // the last 2048 bytes of them
		"", // succeeded: no fallback
		"", // policy File
	}
	for i, cs := range st.ContainerStatuses {
		term := cs.State.Terminated
		if term == nil {
			t.Fatalf("%s: state = %+v, want terminated", cs.Name, cs.State)
		}
		if term.Message != want[i] {
			t.Errorf("%s: message = %q, want %q", cs.Name, term.Message, want[i])
		}
	}
}

func tail(s string, n int) string { return s[len(s)-n:] }

func TestTerminationFileWithoutVolume(t *testing.T) {
	m := &Manager{cfg: Config{DataDir: t.TempDir()}}
	c := &corev1.Container{Name: "c0", TerminationMessagePath: "/dev/termination-log"}
	spec := &runtime.ContainerSpec{}
	if err := m.mountTerminationFile("uid", c, nil, spec); err != nil || len(spec.Mounts) != 0 {
		t.Fatalf("sandbox without the volume: mounts %+v, %v; want none", spec.Mounts, err)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{*c}}}
	pod.UID = "uid"
	if err := m.addTerminationVolume(pod, &runtime.PodSpec{}); err != nil {
		t.Fatal(err)
	}
	rc := &runtime.ContainerStatus{Attempt: 4}
	if err := m.mountTerminationFile("uid", c, rc, spec); err != nil || len(spec.Mounts) != 1 || spec.Mounts[0].SubPath != "c0.5" {
		t.Fatalf("mounts = %+v, %v; want the file of attempt 5", spec.Mounts, err)
	}
}
