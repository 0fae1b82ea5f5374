package pods

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

// Limits of a termination message, as the kubelet's: at most this much
// of the file, or the tail of the log of a failed container.
const (
	maxMessageBytes    = 4096
	maxMessageLogLines = 80
	maxMessageLogBytes = 2048
)

// terminationVolume is the pod volume holding the termination message
// files of its containers, one per attempt. Its name is not a DNS label,
// so it cannot clash with a volume of the pod.
const terminationVolume = ".termination-log"

// terminationDir is where the node keeps the termination message files of
// pod uid; it is removed with the pod's other volumes.
func (m *Manager) terminationDir(uid types.UID) string {
	return m.volumeDir(uid, terminationVolume)
}

// terminationFile names the message file of one attempt of a container.
func terminationFile(name string, attempt int) string {
	return name + "." + strconv.Itoa(attempt)
}

// addTerminationVolume makes the pod's sandbox carry the directory of the
// termination message files, when a container has a message path.
func (m *Manager) addTerminationVolume(pod *corev1.Pod, spec *runtime.PodSpec) error {
	if !hasMessagePath(pod) {
		return nil
	}
	dir := m.terminationDir(pod.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	spec.Volumes = append(spec.Volumes, runtime.Volume{Name: terminationVolume, HostPath: dir})
	return nil
}

func hasMessagePath(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].TerminationMessagePath != "" {
				return true
			}
		}
	}
	return false
}

// mountTerminationFile creates an empty message file for the next attempt
// of c and mounts it at c's terminationMessagePath, as the kubelet does.
// A container without a path gets none.
func (m *Manager) mountTerminationFile(uid types.UID, c *corev1.Container, rc *runtime.ContainerStatus, spec *runtime.ContainerSpec) error {
	if c.TerminationMessagePath == "" {
		return nil
	}
	attempt := 0
	if rc != nil {
		attempt = rc.Attempt + 1
	}
	dir := m.terminationDir(uid)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		// The sandbox was made without the volume, by an earlier agent;
		// mounting from it would fail the start.
		return nil
	}
	name := terminationFile(c.Name, attempt)
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
	if err != nil {
		return fmt.Errorf("termination message file: %w", err)
	}
	f.Close()
	// Any user of the container may write its message.
	if err := os.Chmod(path, 0o666); err != nil {
		return fmt.Errorf("termination message file: %w", err)
	}
	spec.Mounts = append(spec.Mounts, runtime.Mount{Volume: terminationVolume, Path: c.TerminationMessagePath, SubPath: name})
	return nil
}

// terminationMessage reads the message an exited attempt left: its file,
// or with FallbackToLogsOnError and an empty file, the tail of the log of
// a failed attempt.
func (m *Manager) terminationMessage(uid types.UID, c *corev1.Container, rc *runtime.ContainerStatus) string {
	msg := readLimited(filepath.Join(m.terminationDir(uid), terminationFile(c.Name, rc.Attempt)), maxMessageBytes)
	if msg != "" || c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || rc.ExitCode == 0 {
		return msg
	}
	return m.logTail(rc)
}

func readLimited(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}

// logTail returns the last lines of an attempt's log, at most the last
// maxMessageLogBytes of them.
func (m *Manager) logTail(rc *runtime.ContainerStatus) string {
	if rc.LogPath == "" {
		return ""
	}
	f, err := os.Open(m.logPath(rc.LogPath))
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := seekTail(f, maxMessageLogLines); err != nil {
		return ""
	}
	var buf bytes.Buffer
	lw := newLogWriter(&buf, &corev1.PodLogOptions{}, m.cfg.Now())
	_ = copyLog(context.Background(), f, lw, nil) // a partial tail is still worth reporting
	// The end of the output matters most, as the kubelet keeps it.
	out := buf.Bytes()
	return string(out[max(0, len(out)-maxMessageLogBytes):])
}

// messages caches the termination messages of exited attempts by
// container ID, read once each.
type messages map[string]string

// get returns the message of an exited attempt, reading it the first
// time.
func (ms messages) get(m *Manager, uid types.UID, c *corev1.Container, rc *runtime.ContainerStatus) string {
	if msg, ok := ms[rc.ID]; ok {
		return msg
	}
	msg := m.terminationMessage(uid, c, rc)
	ms[rc.ID] = msg
	return msg
}

// prune forgets the attempts that are neither current nor last.
func (ms messages) prune(rs *runtime.PodStatus, exits map[string]runtime.ContainerStatus) {
	keep := map[string]bool{}
	if rs != nil {
		for _, rc := range rs.Containers {
			keep[rc.ID] = true
		}
	}
	for _, rc := range exits {
		keep[rc.ID] = true
	}
	for id := range ms {
		if !keep[id] {
			delete(ms, id)
		}
	}
}
