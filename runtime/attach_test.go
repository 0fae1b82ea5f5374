package runtime

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

const attachWait = 10 * time.Second

// nopCloser is the container log in these tests.
type nopCloser struct{ bytes.Buffer }

func (*nopCloser) Close() error { return nil }

// syncBuffer is a session's output, read while the session runs.
type syncBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	got chan struct{} // signalled on each write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{got: make(chan struct{}, 1024)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got <- struct{}{}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until buf holds want.
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.After(attachWait)
	for buf.String() != want {
		select {
		case <-buf.got:
		case <-deadline:
			t.Fatalf("session output = %q, want %q", buf.String(), want)
		}
	}
}

// startAttach runs hub.attach in a goroutine, waits until the session is
// registered, and returns its result channel.
func startAttach(t *testing.T, h *attachHub, ctx context.Context, opts AttachOptions) <-chan error {
	t.Helper()
	n := h.count()
	errc := make(chan error, 1)
	go func() { errc <- h.attach(ctx, opts, nil) }()
	deadline := time.Now().Add(attachWait)
	for h.count() == n {
		if time.Now().After(deadline) {
			t.Fatal("attach session did not register")
		}
		time.Sleep(time.Millisecond)
	}
	return errc
}

func (h *attachHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func recvErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(attachWait):
		t.Fatal("attach did not return")
	}
	return nil
}

func TestAttachHubOutput(t *testing.T) {
	h, stdin := newAttachHub(false, false)
	if stdin != nil {
		t.Fatal("a hub without stdin returned a stdin reader")
	}
	logOut, logErr := &nopCloser{}, &nopCloser{}
	out, errw := h.writer(logOut, false), h.writer(logErr, true)
	io.WriteString(out, "before\n") // not seen: no session yet
	so, se := newSyncBuffer(), newSyncBuffer()
	errc := startAttach(t, h, context.Background(), AttachOptions{Stdout: so, Stderr: se})
	io.WriteString(out, "one\n")
	io.WriteString(errw, "warn\n")
	io.WriteString(out, "two\n")
	waitFor(t, so, "one\ntwo\n")
	waitFor(t, se, "warn\n")
	h.close()
	if err := recvErr(t, errc); err != nil {
		t.Errorf("attach after exit = %v, want nil", err)
	}
	if logOut.String() != "before\none\ntwo\n" || logErr.String() != "warn\n" {
		t.Errorf("log = %q / %q, want every write", logOut.String(), logErr.String())
	}
	if err := h.attach(context.Background(), AttachOptions{Stdout: so}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("attach to an exited task = %v, want ErrNotFound", err)
	}
}

// TestAttachHubOverrun shows that a session that does not read never
// slows the container: it is dropped once attachBacklog writes behind.
func TestAttachHubOverrun(t *testing.T) {
	h, _ := newAttachHub(false, false)
	out := h.writer(&nopCloser{}, false)
	block := make(chan struct{})
	stuck := writerFunc(func(p []byte) (int, error) { <-block; return len(p), nil })
	errc := startAttach(t, h, context.Background(), AttachOptions{Stdout: stuck})
	for range attachBacklog + 2 {
		io.WriteString(out, "x") // must not block
	}
	close(block) // the client reads again: too late
	if err := recvErr(t, errc); !errors.Is(err, ErrAttachOverrun) {
		t.Errorf("stuck session = %v, want ErrAttachOverrun", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestAttachHubStdin(t *testing.T) {
	for _, once := range []bool{false, true} {
		h, stdin := newAttachHub(true, once)
		got := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(stdin)
			got <- string(b)
		}()
		ctx, cancel := context.WithCancel(context.Background())
		errc := startAttach(t, h, ctx, AttachOptions{Stdin: strings.NewReader("hello\n")})
		if once {
			// The first session's end of input is the container's.
			select {
			case s := <-got:
				if s != "hello\n" {
					t.Errorf("stdinOnce: container read %q, want hello", s)
				}
			case <-time.After(attachWait):
				t.Fatal("stdinOnce: container stdin was not closed")
			}
			if err := h.attach(ctx, AttachOptions{Stdin: strings.NewReader("x")}, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("second stdin session with stdinOnce = %v, want ErrInvalid", err)
			}
		}
		cancel()
		if err := recvErr(t, errc); err != nil {
			t.Errorf("attach = %v after cancel, want nil", err)
		}
		h.close()
		if !once {
			if s := <-got; s != "hello\n" {
				t.Errorf("container read %q, want hello", s)
			}
		}
	}
	h, _ := newAttachHub(false, false)
	if err := h.attach(context.Background(), AttachOptions{Stdin: strings.NewReader("x")}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("stdin to a container without stdin = %v, want ErrInvalid", err)
	}
}
