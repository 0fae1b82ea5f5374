//go:build integration

package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

func running(c *runtime.ContainerStatus) bool { return c.State == runtime.ContainerRunning }
func exited(c *runtime.ContainerStatus) bool  { return c.State == runtime.ContainerExited }

func (e *env) runPod(t *testing.T, pod *runtime.PodSpec, ctrs ...*runtime.ContainerSpec) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := e.rt.RunPodSandbox(ctx, pod); err != nil {
		t.Fatalf("RunPodSandbox = %v", err)
	}
	for _, c := range ctrs {
		if c.Image == "" {
			c.Image = e.image
		}
		if _, err := e.rt.StartContainer(ctx, pod.UID, c); err != nil {
			t.Fatalf("StartContainer(%s) = %v", c.Name, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for two writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *env) exec(t *testing.T, uid, ctr string, cmd ...string) (string, int) {
	t.Helper()
	var out syncBuffer
	code, err := e.rt.Exec(testCtx(t), uid, ctr, runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("Exec(%q) = %v", cmd, err)
	}
	return out.String(), code
}

// recorder is a NetworkSetup that records its calls and hands out one IP.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) Setup(_ context.Context, podID, netns string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := os.Stat(netns); err != nil {
		return "", err
	}
	r.calls = append(r.calls, "setup "+podID)
	return "10.99.0.7", nil
}

func (r *recorder) Teardown(_ context.Context, podID, netns string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "teardown "+podID)
	return nil
}

func TestIntegrationTwoContainerPod(t *testing.T) {
	e := newEnv(t)
	net := &recorder{}
	e.reconnect(t, net)
	pod := &runtime.PodSpec{UID: "two-1", Namespace: "default", Name: "web", Volumes: []runtime.Volume{{Name: "data"}}}
	mount := []runtime.Mount{{Volume: "data", Path: "/data"}}
	e.runPod(t, pod,
		&runtime.ContainerSpec{Name: "server", Command: []string{"sh", "-c", "echo hello-from-volume > /data/index.html && httpd -f -p 8080 -h /data"}, Mounts: mount},
		&runtime.ContainerSpec{Name: "client", Command: []string{"sleep", "3600"}, Mounts: mount, Env: []runtime.EnvVar{{Name: "GREETING", Value: "hi"}}, WorkingDir: "/data"},
	)
	runtimetest.WaitContainer(t, e.rt, pod.UID, "server", 20*time.Second, running)
	runtimetest.WaitContainer(t, e.rt, pod.UID, "client", 20*time.Second, running)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code := e.exec(t, pod.UID, "client", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html")
		if code == 0 && strings.TrimSpace(out) == "hello-from-volume" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wget over localhost = %q, exit %d", out, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checks := []struct{ cmd, want string }{
		{"hostname", "web"},
		{"cat /etc/hostname", "web"},
		{"grep web /etc/hosts", "10.99.0.7\tweb"},
		{"env | grep GREETING", "GREETING=hi"},
		{"pwd", "/data"},
		{"cat /data/index.html", "hello-from-volume"},
	}
	for _, c := range checks {
		if out, code := e.exec(t, pod.UID, "client", "sh", "-c", c.cmd); code != 0 || strings.TrimSpace(out) != c.want {
			t.Errorf("exec %q = %q, exit %d; want %q", c.cmd, out, code, c.want)
		}
	}
	if got := strings.Join(net.calls, ","); got != "setup two-1" {
		t.Errorf("network calls = %q", got)
	}
	st, _ := e.rt.PodStatus(testCtx(t), pod.UID)
	if st.IP != "10.99.0.7" {
		t.Errorf("pod IP = %q", st.IP)
	}
	if err := e.rt.StopPod(testCtx(t), pod.UID, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(net.calls, ","); got != "setup two-1,teardown two-1" {
		t.Errorf("network calls = %q", got)
	}
}

var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (stdout|stderr) [FP] .*$`)

func TestIntegrationLogsAndExitCodes(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "logs-1", Namespace: "ns1", Name: "logger"}
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Command: []string{"sh", "-c", "echo out1; echo err1 >&2; printf partial; exit 7"}})
	c := runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, exited)
	if c.ExitCode != 7 || c.Reason != "Error" || c.FinishedAt.Before(c.StartedAt) || c.StartedAt.IsZero() {
		t.Errorf("status = %+v, want exit 7 with start and finish times", c)
	}
	want := filepath.Join(e.cfg.DataDir, "pods", "ns1_logger_logs-1", "c", "0.log")
	if c.LogPath != want {
		t.Errorf("LogPath = %q, want %q", c.LogPath, want)
	}
	data, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var texts []string
	for _, l := range lines {
		if !logLine.MatchString(l) {
			t.Errorf("log line %q is not in CRI format", l)
		}
		texts = append(texts, strings.SplitN(l, " ", 2)[1])
	}
	got := strings.Join(texts, "|")
	for _, w := range []string{"stdout F out1", "stderr F err1", "stdout P partial"} {
		if !strings.Contains(got, w) {
			t.Errorf("log %q lacks %q", got, w)
		}
	}
	// A restart writes the next attempt's log beside the first.
	if _, err := e.rt.StartContainer(testCtx(t), pod.UID, &runtime.ContainerSpec{Name: "c", Image: e.image, Command: []string{"sh", "-c", "echo second; exit 0"}}); err != nil {
		t.Fatal(err)
	}
	c = runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, exited)
	if c.Attempt != 1 || c.ExitCode != 0 || c.Reason != "Completed" {
		t.Errorf("restart status = %+v", c)
	}
	if data, _ := os.ReadFile(c.LogPath); !strings.Contains(string(data), "stdout F second") {
		t.Errorf("attempt 1 log = %q", data)
	}
}

func TestIntegrationExec(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "exec-1", Namespace: "default", Name: "ex"}
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Command: []string{"sleep", "3600"}})
	runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, running)
	if out, code := e.exec(t, pod.UID, "c", "sh", "-c", "echo to-out; echo to-err >&2; exit 42"); code != 42 || !strings.Contains(out, "to-out") || !strings.Contains(out, "to-err") {
		t.Errorf("exec = %q, %d; want both streams and 42", out, code)
	}
	var out bytes.Buffer
	code, err := e.rt.Exec(testCtx(t), pod.UID, "c", runtime.ExecOptions{Cmd: []string{"cat"}, Stdin: strings.NewReader("piped\n"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "piped\n" {
		t.Errorf("exec cat with stdin = %q, %d, %v", out.String(), code, err)
	}
	out.Reset()
	resize := make(chan runtime.TermSize, 1)
	resize <- runtime.TermSize{Width: 100, Height: 30}
	close(resize)
	code, err = e.rt.Exec(testCtx(t), pod.UID, "c", runtime.ExecOptions{Cmd: []string{"sh", "-c", "sleep 0.3; test -t 1 && echo tty"}, TTY: true, Stdout: &out, Resize: resize})
	if err != nil || code != 0 || !strings.Contains(out.String(), "tty") {
		t.Errorf("exec with tty = %q, %d, %v", out.String(), code, err)
	}
	if _, err := e.rt.Exec(testCtx(t), pod.UID, "nope", runtime.ExecOptions{Cmd: []string{"true"}}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Exec(unknown container) = %v, want ErrNotFound", err)
	}
}

func TestIntegrationGracefulStop(t *testing.T) {
	e := newEnv(t)
	pod := &runtime.PodSpec{UID: "grace-1", Namespace: "default", Name: "grace"}
	e.runPod(t, pod,
		&runtime.ContainerSpec{Name: "polite", Command: []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"}},
		&runtime.ContainerSpec{Name: "stubborn", Command: []string{"sleep", "3600"}})
	runtimetest.WaitContainer(t, e.rt, pod.UID, "polite", 20*time.Second, running)
	runtimetest.WaitContainer(t, e.rt, pod.UID, "stubborn", 20*time.Second, running)
	time.Sleep(200 * time.Millisecond) // let the trap be installed
	start := time.Now()
	if err := e.rt.StopContainer(testCtx(t), pod.UID, "polite", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("polite container took %v to stop", d)
	}
	if c := runtimetest.WaitContainer(t, e.rt, pod.UID, "polite", 5*time.Second, exited); c.ExitCode != 0 {
		t.Errorf("polite exit = %d, want 0", c.ExitCode)
	}
	start = time.Now()
	if err := e.rt.StopContainer(testCtx(t), pod.UID, "stubborn", time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Errorf("stubborn container stopped in %v, want grace 1s then SIGKILL", d)
	}
	if c := runtimetest.WaitContainer(t, e.rt, pod.UID, "stubborn", 5*time.Second, exited); c.ExitCode != 137 {
		t.Errorf("stubborn exit = %d, want 137", c.ExitCode)
	}
}
