//go:build integration

package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// lockedBuffer is an attach session's output, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestIntegrationAttach(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "attach-1", Namespace: "default", Name: "at"}
	e.runPod(t, pod,
		&runtime.ContainerSpec{Name: "reader", Stdin: true, StdinOnce: true,
			Command: []string{"sh", "-c", `while read l; do echo "got $l"; done; echo done >&2`}},
		&runtime.ContainerSpec{Name: "ticker", Command: []string{"sh", "-c", "while true; do echo tick; sleep 0.1; done"}})
	runtimetest.WaitContainer(t, e.rt, pod.UID, "reader", 20*time.Second, running)
	runtimetest.WaitContainer(t, e.rt, pod.UID, "ticker", 20*time.Second, running)

	// stdin reaches the process; its end (stdinOnce) ends the process,
	// which ends the session after the last output.
	var out, errOut bytes.Buffer
	err := e.rt.Attach(testCtx(t), pod.UID, "reader", runtime.AttachOptions{
		Stdin: strings.NewReader("hello\nworld\n"), Stdout: &out, Stderr: &errOut})
	if err != nil || out.String() != "got hello\ngot world\n" || errOut.String() != "done\n" {
		t.Errorf("attach reader = %v, stdout %q, stderr %q; want nil, both lines, done", err, out.String(), errOut.String())
	}
	runtimetest.WaitContainer(t, e.rt, pod.UID, "reader", 20*time.Second, exited)

	// Output only: the session follows until cancelled.
	ctx, cancel := context.WithCancel(testCtx(t))
	var ticks lockedBuffer
	done := make(chan error, 1)
	go func() { done <- e.rt.Attach(ctx, pod.UID, "ticker", runtime.AttachOptions{Stdout: &ticks}) }()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(ticks.String(), "tick\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || strings.Count(ticks.String(), "tick\n") < 2 {
		t.Errorf("attach ticker = %v with %q, want nil and ticks", err, ticks.String())
	}
	if err := e.rt.Attach(testCtx(t), pod.UID, "ticker", runtime.AttachOptions{Stdin: strings.NewReader("x"), Stdout: io.Discard}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("attach stdin to a container without stdin = %v, want ErrInvalid", err)
	}
	if err := e.rt.Attach(testCtx(t), pod.UID, "reader", runtime.AttachOptions{Stdout: io.Discard}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("attach to an exited container = %v, want ErrNotFound", err)
	}
}
