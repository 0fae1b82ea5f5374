package streaming_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/websocket"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
)

// readLogWebSocket reads every message of a log WebSocket until it closes.
func readLogWebSocket(t *testing.T, u, protocol string) []string {
	t.Helper()
	cfg, err := websocket.NewConfig(strings.Replace(u, "https://", "wss://", 1), "http://localhost")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{protocol}
	cfg.TlsConfig = &tls.Config{InsecureSkipVerify: true}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("dial %s (%s): %v", u, protocol, err)
	}
	defer ws.Close()
	var msgs []string
	for {
		var msg string
		if err := websocket.Message.Receive(ws, &msg); errors.Is(err, io.EOF) {
			return msgs
		} else if err != nil {
			t.Fatalf("receive: %v", err)
		}
		msgs = append(msgs, msg)
	}
}

// Logs are also served over a WebSocket, raw (binary.k8s.io) or base64
// (base64.binary.k8s.io): an empty message, the log, then the close.
func TestLogsWebSocket(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &fakeStreamer{logs: func(ctx context.Context, pod types.NamespacedName, c string, opts *corev1.PodLogOptions, w io.Writer) error {
		if c == "gone" {
			return fmt.Errorf("container %q: %w", c, pods.ErrNotFound)
		}
		_, err := io.WriteString(w, "container is alive\n")
		return err
	}})
	h.addPod("p", "n1", "main", "gone")

	u := h.url("p", "log", url.Values{"container": {"main"}})
	got := readLogWebSocket(t, u, "binary.k8s.io")
	if strings.Join(got, "") != "container is alive\n" || len(got) == 0 || got[0] != "" {
		t.Errorf("binary.k8s.io messages = %q, want an empty one, then the log", got)
	}
	var decoded strings.Builder
	for _, m := range readLogWebSocket(t, u, "base64.binary.k8s.io") {
		b, err := base64.StdEncoding.DecodeString(m)
		if err != nil {
			t.Fatalf("message %q is not base64: %v", m, err)
		}
		decoded.Write(b)
	}
	if decoded.String() != "container is alive\n" {
		t.Errorf("base64.binary.k8s.io log = %q, want %q", decoded.String(), "container is alive\n")
	}

	// An error found before any output is an HTTP Status, not an upgrade.
	req, _ := http.NewRequest(http.MethodGet, h.url("p", "log", url.Values{"container": {"gone"}}), nil)
	req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Protocol": {"binary.k8s.io"}}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("log WebSocket of a missing container = %d, want 404", resp.StatusCode)
	}
}
