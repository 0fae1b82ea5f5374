package pods

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// logEnv is a manager (not running) that knows one pod whose container c0
// runs its second attempt, with the fixture logs as attempts 0 and 1.
type logEnv struct {
	m    *Manager
	fake *runtimetest.Fake
	pod  *corev1.Pod
	name types.NamespacedName
	path string // log of the running attempt
}

func newLogEnv(t *testing.T, now time.Time) *logEnv {
	ctx := context.Background()
	e := &logEnv{fake: runtimetest.NewFake(), pod: newPod("logs", "")}
	e.fake.AddImage(testImage)
	e.name = types.NamespacedName{Namespace: e.pod.Namespace, Name: e.pod.Name}
	dir := t.TempDir()
	m, err := NewManager(Config{Runtime: e.fake, Reporter: newRecorder(), DataDir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	uid := string(e.pod.UID)
	e.fake.RunPodSandbox(ctx, &runtime.PodSpec{UID: uid, Namespace: "ns", Name: "logs"})
	spec := &runtime.ContainerSpec{Name: "c0", Image: testImage}
	e.fake.StartContainer(ctx, uid, spec)
	e.fake.StopContainer(ctx, uid, "c0", 0)
	rc, err := e.fake.StartContainer(ctx, uid, spec)
	if err != nil {
		t.Fatal(err)
	}
	e.path = filepath.Join(dir, rc.LogPath)
	os.MkdirAll(filepath.Dir(e.path), 0o755)
	copyFile(t, "testdata/current.log", e.path)
	copyFile(t, "testdata/previous.log", filepath.Join(filepath.Dir(e.path), "0.log"))
	m.SetPods([]*corev1.Pod{e.pod})
	return e
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLogs(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 6, 0, time.UTC)
	since := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC))
	tests := []struct {
		name string
		opts corev1.PodLogOptions
		want string
	}{
		{"plain", corev1.PodLogOptions{}, "one\ntwo\nthree\n\nfive\n"},
		{"timestamps", corev1.PodLogOptions{Timestamps: true, TailLines: ptr(int64(3))},
			"2026-01-01T00:00:03.000000000Z three\n2026-01-01T00:00:04.000000000Z \n2026-01-01T00:00:05.000000000Z five\n"},
		{"tail 2", corev1.PodLogOptions{TailLines: ptr(int64(2))}, "\nfive\n"},
		{"tail spans partial entries", corev1.PodLogOptions{TailLines: ptr(int64(3))}, "three\n\nfive\n"},
		{"tail 0", corev1.PodLogOptions{TailLines: ptr(int64(0))}, ""},
		{"tail beyond start", corev1.PodLogOptions{TailLines: ptr(int64(100))}, "one\ntwo\nthree\n\nfive\n"},
		{"sinceSeconds", corev1.PodLogOptions{SinceSeconds: ptr(int64(2))}, "\nfive\n"},
		{"sinceTime", corev1.PodLogOptions{SinceTime: &since}, "three\n\nfive\n"},
		{"limitBytes", corev1.PodLogOptions{LimitBytes: ptr(int64(6))}, "one\ntw"},
		{"previous", corev1.PodLogOptions{Previous: true}, "previous run\ncrashed\n"},
		{"previous ignores follow", corev1.PodLogOptions{Previous: true, Follow: true, TailLines: ptr(int64(1))}, "crashed\n"},
	}
	e := newLogEnv(t, now)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := e.m.Logs(context.Background(), e.name, "c0", &tc.opts, &out); err != nil {
				t.Fatalf("Logs = %v", err)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("Logs(%+v) = %q, want %q", tc.opts, got, tc.want)
			}
		})
	}
}

func TestLogsNotFound(t *testing.T) {
	e := newLogEnv(t, time.Now())
	tests := []struct {
		name      string
		pod       types.NamespacedName
		container string
	}{
		{"unknown pod", types.NamespacedName{Namespace: "ns", Name: "nope"}, "c0"},
		{"unknown container", e.name, "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.m.Logs(context.Background(), tc.pod, tc.container, nil, io.Discard)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Logs = %v, want ErrNotFound", err)
			}
		})
	}
	// The only container is the default.
	var out bytes.Buffer
	if err := e.m.Logs(context.Background(), e.name, "", nil, &out); err != nil || out.Len() == 0 {
		t.Errorf("Logs without a container name = %v, %q", err, out.String())
	}
}

// syncBuffer is safe for a writer and a reader.
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

func TestLogsFollow(t *testing.T) {
	oldPoll, oldCheck := followPoll, followCheck
	followPoll, followCheck = 5*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { followPoll, followCheck = oldPoll, oldCheck })
	e := newLogEnv(t, time.Now())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.m.Logs(context.Background(), e.name, "c0", &corev1.PodLogOptions{Follow: true, TailLines: ptr(int64(1))}, &out)
	}()
	f, err := os.OpenFile(e.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	time.Sleep(50 * time.Millisecond)
	// An entry written in two pieces is read once complete.
	f.WriteString("2026-01-01T00:00:07Z stdout F si")
	time.Sleep(20 * time.Millisecond)
	f.WriteString("x\n")
	deadline := time.Now().Add(wait)
	for out.String() != "five\nsix\n" {
		if time.Now().After(deadline) {
			t.Fatalf("followed output = %q, want %q", out.String(), "five\nsix\n")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Logs returned while the container runs: %v", err)
	default:
	}
	f.WriteString("2026-01-01T00:00:08Z stdout F last\n")
	e.fake.StopContainer(context.Background(), string(e.pod.UID), "c0", 0)
	select {
	case err := <-done:
		if err != nil || out.String() != "five\nsix\nlast\n" {
			t.Errorf("Logs = %v, output %q; want nil, drained output", err, out.String())
		}
	case <-time.After(wait):
		t.Fatal("Logs did not return after the container exited")
	}
}

func TestLogsFollowCancel(t *testing.T) {
	e := newLogEnv(t, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Logs(ctx, e.name, "c0", &corev1.PodLogOptions{Follow: true}, io.Discard) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Logs = %v, want nil", err)
		}
	case <-time.After(wait):
		t.Fatal("Logs did not return after cancel")
	}
}

// execFake adds an Execer to the Fake.
type execFake struct {
	*runtimetest.Fake
	got   []string
	sizes []runtime.TermSize
}

func (f *execFake) Exec(_ context.Context, uid, ctr string, opts runtime.ExecOptions) (int, error) {
	if _, err := f.PodStatus(context.Background(), uid); err != nil {
		return 0, err
	}
	f.got = append([]string{uid, ctr}, opts.Cmd...)
	in, _ := io.ReadAll(opts.Stdin)
	io.WriteString(opts.Stdout, strings.ToUpper(string(in)))
	for sz := range opts.Resize {
		f.sizes = append(f.sizes, sz)
	}
	return 3, nil
}

func TestExec(t *testing.T) {
	e := newLogEnv(t, time.Now())
	ex := &execFake{Fake: e.fake}
	e.m.cfg.Runtime = ex
	var out bytes.Buffer
	resize := make(chan TermSize, 1)
	resize <- TermSize{Width: 80, Height: 24}
	close(resize)
	code, err := e.m.Exec(context.Background(), e.name, "c0", []string{"cat"},
		ExecStreams{Stdin: strings.NewReader("hi"), Stdout: &out, TTY: true, Resize: resize})
	if err != nil || code != 3 || out.String() != "HI" {
		t.Errorf("Exec = %d, %v, output %q; want 3, nil, HI", code, err, out.String())
	}
	if want := []string{string(e.pod.UID), "c0", "cat"}; strings.Join(ex.got, " ") != strings.Join(want, " ") {
		t.Errorf("runtime Exec got %q, want %q", ex.got, want)
	}
	if len(ex.sizes) != 1 || ex.sizes[0] != (runtime.TermSize{Width: 80, Height: 24}) {
		t.Errorf("sizes = %v, want [{80 24}]", ex.sizes)
	}
	if _, err := e.m.Exec(context.Background(), types.NamespacedName{Namespace: "ns", Name: "x"}, "c0", []string{"true"}, ExecStreams{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Exec in unknown pod = %v, want ErrNotFound", err)
	}
}
