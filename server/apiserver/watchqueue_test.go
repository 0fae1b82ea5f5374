package apiserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWatchCutsClientThatDoesNotRead checks that a watch whose client
// does not read is ended once more than WatchBufferBytes wait for it,
// while writes and a watch that reads go on.
func TestWatchCutsClientThatDoesNotRead(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.WatchBufferBytes = 4 << 20 })
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, testPod("big", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/namespaces/default/pods?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	reading, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer reading.Stop()
	nextEvent(t, reading) // ADDED big: both watches have started
	const writes = 200    // of 128 KiB: more than the limit and socket buffers hold
	got := make(chan string, writes)
	go func() {
		for ev := range reading.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				got <- p.Status.Message[:4]
			}
		}
		close(got)
	}()

	for i := range writes {
		pod, err := pods.Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		pod.Status.Message = fmt.Sprintf("%04d", i) + strings.Repeat("m", 128<<10)
		if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("UpdateStatus %d: %v", i, err)
		}
	}
	for i := range writes {
		select {
		case msg, ok := <-got:
			if want := fmt.Sprintf("%04d", i); msg != want {
				t.Fatalf("reading watch event %d: message %q (open %v), want %q", i, msg, ok, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("reading watch: no event %d within 10s", i)
		}
	}
	// The stream of the client that did not read has ended, short of
	// the last writes.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	lines, ended := 0, false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// EOF, or a reset: not the test's deadline.
			var ne net.Error
			ended = err == io.EOF || !(errors.As(err, &ne) && ne.Timeout())
			break
		}
		if strings.HasPrefix(line, `{"type"`) {
			lines++
		}
	}
	if !ended || lines > writes {
		t.Errorf("watch that did not read: %d events, then ended=%v; want fewer than %d events and the end", lines, ended, writes+1)
	}
}

// TestInProcessWatchCutsClientThatDoesNotRead checks the same of a watch
// through the in-process transport, whose writes wait for the client.
func TestInProcessWatchCutsClientThatDoesNotRead(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.WatchBufferBytes = 1 << 20
		c.Metrics = NewMetrics()
	})
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, testPod("big", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	tr := newInProcessTransport(ctx, ts.Server, LoopbackUser, nil)
	req, _ := http.NewRequest(http.MethodGet, "http://loopback/api/v1/namespaces/default/pods?watch=1", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	const writes = 40 // of 128 KiB: more than the limit and the transport's buffer
	for i := range writes {
		pod, err := pods.Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		pod.Status.Message = fmt.Sprintf("%04d", i) + strings.Repeat("m", 128<<10)
		if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("UpdateStatus %d: %v", i, err)
		}
	}
	// Its handler ends without waiting for the client to read.
	deadline := time.Now().Add(20 * time.Second)
	for watching(ts) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the watch of a client that fell behind is still running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines := make(chan int, 1)
	go func() {
		n := 0
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			n++
		}
		lines <- n
	}()
	select {
	case n := <-lines:
		if n > writes {
			t.Errorf("watch that did not read: %d events, want fewer than %d", n, writes+1)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the stream of a client that fell behind did not end")
	}
}

// watching is the number of watches ts is serving.
func watching(ts *testServer) float64 {
	var m dto.Metric
	ts.metrics.watching.Write(&m)
	return m.GetGauge().GetValue()
}
