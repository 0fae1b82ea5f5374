package streaming_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	"github.com/minik-dev/minik/agent/pods"
)

// execURL is the URL kubectl exec would use.
func (h *harness) execURL(pod, sub string, cmd []string, stdin, tty bool) string {
	q := url.Values{"command": cmd, "stdout": {"true"}}
	if stdin {
		q.Set("stdin", "true")
	}
	if tty {
		q.Set("tty", "true")
	} else {
		q.Set("stderr", "true")
	}
	return h.url(pod, sub, q)
}

// executors returns kubectl's two transports for u.
func (h *harness) executors(u string) map[string]remotecommand.Executor {
	h.t.Helper()
	ws, err := remotecommand.NewWebSocketExecutor(h.restConfig(), "GET", u)
	if err != nil {
		h.t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		h.t.Fatal(err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(h.restConfig(), "POST", parsed)
	if err != nil {
		h.t.Fatal(err)
	}
	return map[string]remotecommand.Executor{"websocket": ws, "spdy": spdy}
}

// stream runs e with a timeout.
func stream(t *testing.T, e remotecommand.Executor, opts remotecommand.StreamOptions) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return e.StreamWithContext(ctx, opts)
}

// echoExec copies stdin to stdout in upper case, writes the command to
// stderr and exits with the code in the command's second word.
func echoExec(ctx context.Context, pod types.NamespacedName, c string, cmd []string, s pods.ExecStreams) (int, error) {
	if s.Stdin != nil {
		in, err := io.ReadAll(s.Stdin)
		if err != nil {
			return 0, err
		}
		if _, err := s.Stdout.Write(bytes.ToUpper(in)); err != nil {
			return 0, err
		}
	}
	if s.Stderr != nil {
		fmt.Fprintf(s.Stderr, "%s/%s %s", pod, c, strings.Join(cmd, " "))
	}
	code := 0
	if len(cmd) > 1 {
		fmt.Sscan(cmd[1], &code)
	}
	return code, nil
}

func TestExecStreams(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{exec: echoExec})
	h.addPod("p", "n1", "c")
	for name, e := range h.executors(h.execURL("p", "exec", []string{"sh", "0"}, true, false)) {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := stream(t, e, remotecommand.StreamOptions{Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatalf("Stream = %v, want nil", err)
			}
			if stdout.String() != "HELLO\n" || stderr.String() != "default/p/c sh 0" {
				t.Errorf("stdout, stderr = %q, %q, want %q, %q", stdout.String(), stderr.String(), "HELLO\n", "default/p/c sh 0")
			}
		})
	}
}

func TestExecExitCode(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{exec: echoExec})
	h.addPod("p", "n1", "c")
	for name, e := range h.executors(h.execURL("p", "exec", []string{"false", "3"}, false, false)) {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := stream(t, e, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
			var ce exec.CodeExitError
			if !errors.As(err, &ce) || ce.Code != 3 {
				t.Fatalf("Stream = %v, want exec.CodeExitError with code 3", err)
			}
			if stderr.String() != "default/p/c false 3" {
				t.Errorf("stderr = %q, want %q", stderr.String(), "default/p/c false 3")
			}
		})
	}
}

// sizeQueue hands out sizes, then blocks until done.
type sizeQueue struct {
	sizes chan remotecommand.TerminalSize
	done  chan struct{}
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case sz := <-q.sizes:
		return &sz
	case <-q.done:
		return nil
	}
}

func TestExecTTYResize(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{exec: func(ctx context.Context, pod types.NamespacedName, c string, cmd []string, s pods.ExecStreams) (int, error) {
		if !s.TTY || s.Stderr != nil || s.Resize == nil {
			return 1, fmt.Errorf("streams %+v, want tty with resize and no stderr", s)
		}
		// Sizes not yet taken are replaced by newer ones: the last one
		// always arrives.
		for {
			select {
			case sz := <-s.Resize:
				fmt.Fprintf(s.Stdout, "%dx%d;", sz.Width, sz.Height)
				if sz.Width == 120 {
					return 0, nil
				}
			case <-ctx.Done():
				return 1, ctx.Err()
			}
		}
	}})
	h.addPod("p", "n1", "c")
	for name, e := range h.executors(h.execURL("p", "exec", []string{"sh"}, false, true)) {
		t.Run(name, func(t *testing.T) {
			q := &sizeQueue{sizes: make(chan remotecommand.TerminalSize, 2), done: make(chan struct{})}
			defer close(q.done)
			q.sizes <- remotecommand.TerminalSize{Width: 80, Height: 24}
			q.sizes <- remotecommand.TerminalSize{Width: 120, Height: 40}
			var stdout bytes.Buffer
			err := stream(t, e, remotecommand.StreamOptions{Stdout: &stdout, Tty: true, TerminalSizeQueue: q})
			if err != nil {
				t.Fatalf("Stream = %v, want nil", err)
			}
			if got := stdout.String(); got != "80x24;120x40;" && got != "120x40;" {
				t.Errorf("stdout = %q, want %q or %q", got, "80x24;120x40;", "120x40;")
			}
		})
	}
}

func TestExecErrors(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{exec: func(ctx context.Context, pod types.NamespacedName, c string, cmd []string, s pods.ExecStreams) (int, error) {
		return 0, fmt.Errorf("container %q: %w", c, pods.ErrNotFound)
	}})
	h.addPod("p", "n1", "c")
	h.addPod("away", "n2", "c")
	h.addPod("two", "n1", "a", "b")
	for _, tc := range []struct {
		name, pod, sub string
		want           string
	}{
		{"not on node", "p", "exec", `container "c": pods: not found`},
		{"node not connected", "away", "exec", `node "n2" is not connected`},
		{"no container of two", "two", "exec", "a container name must be specified for pod two, choose one of: [a b]"},
		{"attach unsupported", "p", "attach", "attach is not supported by this node"},
	} {
		for name, e := range h.executors(h.execURL(tc.pod, tc.sub, []string{"sh"}, false, false)) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				err := stream(t, e, remotecommand.StreamOptions{Stdout: io.Discard, Stderr: io.Discard})
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Stream = %v, want an error with %q", err, tc.want)
				}
			})
		}
	}
}

func TestExecConcurrentSessions(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{exec: func(ctx context.Context, pod types.NamespacedName, c string, cmd []string, s pods.ExecStreams) (int, error) {
		_, err := io.Copy(s.Stdout, s.Stdin)
		return 0, err
	}})
	h.addPod("p", "n1", "c")
	const sessions = 8
	var wg sync.WaitGroup
	errs := make([]error, sessions)
	for i := range sessions {
		wg.Go(func() {
			execs := h.executors(h.execURL("p", "exec", []string{"cat"}, true, false))
			e := execs[[]string{"websocket", "spdy"}[i%2]]
			in := strings.Repeat(fmt.Sprintf("session %d\n", i), 20000)
			var out bytes.Buffer
			if err := stream(t, e, remotecommand.StreamOptions{Stdin: strings.NewReader(in), Stdout: &out, Stderr: io.Discard}); err != nil {
				errs[i] = err
				return
			}
			if out.String() != in {
				errs[i] = fmt.Errorf("session %d: got %d bytes, %d lines of others", i, out.Len(),
					len(slices.DeleteFunc(strings.Split(out.String(), "\n"), func(l string) bool { return l == fmt.Sprintf("session %d", i) || l == "" })))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("session %d: %v", i, err)
		}
	}
}

func TestExecClientGoesAway(t *testing.T) {
	h := newHarness(t)
	started := make(chan struct{}, 2)
	ended := make(chan error, 2)
	h.startAgent("n1", &fakeStreamer{exec: func(ctx context.Context, pod types.NamespacedName, c string, cmd []string, s pods.ExecStreams) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return 0, ctx.Err()
	}})
	h.addPod("p", "n1", "c")
	for name, e := range h.executors(h.execURL("p", "exec", []string{"sleep"}, true, false)) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stdin, stdinW := io.Pipe() // stays open: the client holds stdin
			defer stdinW.Close()
			errc := make(chan error, 1)
			go func() {
				errc <- e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: io.Discard, Stderr: io.Discard})
			}()
			recv(t, started, "Exec to start")
			cancel()
			recv(t, errc, "the client to return")
			if err := recv(t, ended, "Exec to see its context end"); !errors.Is(err, context.Canceled) {
				t.Errorf("Exec context error = %v, want context.Canceled", err)
			}
		})
	}
}
