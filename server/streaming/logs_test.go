package streaming_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/minik-dev/minik/agent/pods"
)

func TestLogsFollow(t *testing.T) {
	h := newHarness(t)
	lines := make(chan string)
	ended := make(chan error, 1)
	h.startAgent("n1", &fakeStreamer{logs: func(ctx context.Context, pod types.NamespacedName, c string, opts *corev1.PodLogOptions, w io.Writer) error {
		if !opts.Follow {
			return fmt.Errorf("follow not set: %w", errTest)
		}
		for {
			select {
			case l := <-lines:
				if _, err := io.WriteString(w, l); err != nil {
					ended <- err
					return err
				}
			case <-ctx.Done():
				ended <- ctx.Err()
				return ctx.Err()
			}
		}
	}})
	h.addPod("p", "n1", "c")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := h.get(ctx, h.url("p", "log", url.Values{"follow": {"true"}}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET log status = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	br := bufio.NewReader(resp.Body)
	readc := make(chan string)
	go func() {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				close(readc)
				return
			}
			readc <- l
		}
	}()
	for i := range 3 {
		want := fmt.Sprintf("line %d\n", i)
		select {
		case lines <- want:
		case <-time.After(waitTimeout):
			t.Fatal("agent's Logs is not running")
		}
		if got := recv(t, readc, "a log line"); got != want {
			t.Fatalf("line %d = %q, want %q", i, got, want)
		}
	}
	cancel() // the client goes away
	if err := recv(t, ended, "Logs to return"); err == nil {
		t.Errorf("Logs ended without error, want the context's or a write error")
	}
}

func TestLogsOptions(t *testing.T) {
	h := newHarness(t)
	got := make(chan *corev1.PodLogOptions, 1)
	h.startAgent("n1", &fakeStreamer{logs: func(ctx context.Context, pod types.NamespacedName, c string, opts *corev1.PodLogOptions, w io.Writer) error {
		if pod.String() != "default/p" || c != "c2" {
			return fmt.Errorf("pod %s container %s: %w", pod, c, errTest)
		}
		got <- opts
		_, err := io.WriteString(w, "a\nb\n")
		return err
	}})
	h.addPod("p", "n1", "c1", "c2")

	q := url.Values{"container": {"c2"}, "tailLines": {"2"}, "timestamps": {"true"}, "limitBytes": {"100"}, "sinceSeconds": {"60"}, "previous": {"false"}}
	resp := h.get(context.Background(), h.url("p", "log", q))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "a\nb\n" {
		t.Fatalf("GET log = %d %q, want 200 %q", resp.StatusCode, body, "a\nb\n")
	}
	want := &corev1.PodLogOptions{Container: "c2", TailLines: ptr.To[int64](2), Timestamps: true, LimitBytes: ptr.To[int64](100), SinceSeconds: ptr.To[int64](60)}
	if diff := cmp.Diff(want, recv(t, got, "options")); diff != "" {
		t.Errorf("PodLogOptions (-want +got):\n%s", diff)
	}
}

func TestLogsErrors(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{logs: func(ctx context.Context, pod types.NamespacedName, c string, opts *corev1.PodLogOptions, w io.Writer) error {
		return fmt.Errorf("container %q gone: %w", c, pods.ErrNotFound)
	}})
	h.addPod("two", "n1", "a", "b")
	h.addPod("unbound", "", "a")
	h.addPod("away", "n2", "a")
	h.addPod("one", "n1", "a")

	for _, tc := range []struct {
		name   string
		pod    string
		q      url.Values
		code   int
		reason metav1.StatusReason
		msg    string
	}{
		{"no container of two", "two", nil, 400, metav1.StatusReasonBadRequest, "a container name must be specified for pod two, choose one of: [a b]"},
		{"unknown container", "two", url.Values{"container": {"x"}}, 400, metav1.StatusReasonBadRequest, "container x is not valid for pod two"},
		{"unbound", "unbound", nil, 400, metav1.StatusReasonBadRequest, "pod unbound does not have a host assigned"},
		{"node not connected", "away", nil, 503, metav1.StatusReasonServiceUnavailable, `node "n2" is not connected`},
		{"not on node", "one", nil, 404, metav1.StatusReasonNotFound, `container "a" gone: pods: not found`},
		{"negative tailLines", "one", url.Values{"tailLines": {"-1"}}, 422, metav1.StatusReasonInvalid, ""},
		{"bad follow", "one", url.Values{"follow": {"maybe"}}, 400, metav1.StatusReasonBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.get(context.Background(), h.url(tc.pod, "log", tc.q))
			var st metav1.Status
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatalf("decode Status: %v", err)
			}
			if resp.StatusCode != tc.code || int(st.Code) != tc.code || st.Reason != tc.reason || st.Kind != "Status" {
				t.Errorf("GET log = %d %+v, want %d reason %s", resp.StatusCode, st, tc.code, tc.reason)
			}
			if tc.msg != "" && st.Message != tc.msg {
				t.Errorf("message = %q, want %q", st.Message, tc.msg)
			}
		})
	}
}

// TestLogsSlowClient checks that a client that does not read holds the
// node's writer back instead of the server buffering the log.
func TestLogsSlowClient(t *testing.T) {
	h := newHarness(t)
	const total = 64 << 20
	var written atomic.Int64
	h.startAgent("n1", &fakeStreamer{logs: func(ctx context.Context, pod types.NamespacedName, c string, opts *corev1.PodLogOptions, w io.Writer) error {
		chunk := []byte(strings.Repeat("x", 1023) + "\n")
		for written.Load() < total {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return err
			}
		}
		return nil
	}})
	h.addPod("p", "n1", "c")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := h.get(ctx, h.url("p", "log", url.Values{"follow": {"true"}}))
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	// Let the pipeline fill up, then check it stopped well short.
	var last int64 = -1
	for i := 0; i < 50 && written.Load() != last; i++ {
		last = written.Load()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("node wrote %d bytes while the client read 1 KiB", written.Load())
	if got := written.Load(); got >= total/2 {
		t.Errorf("node wrote %d of %d bytes to a client that read 1 KiB, want it held back", got, total)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n+1024 != total {
		t.Errorf("read %d bytes (%v), want %d", n+1024, err, total)
	}
}
