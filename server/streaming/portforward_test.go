package streaming_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// upperServer is a TCP server on 127.0.0.1 standing in for a process in
// the pod: it answers each connection with its input upper-cased, once
// the input ends.
func upperServer(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				in, _ := io.ReadAll(c)
				c.Write(bytes.ToUpper(in))
			}()
		}
	}()
	return lis
}

// pfDialers are the ways kubectl starts port forwarding: SPDY, SPDY
// tunneled in a WebSocket, and the latter falling back to the former (what
// kubectl does).
func (h *harness) pfDialers(pod string) map[string]httpstream.Dialer {
	h.t.Helper()
	u, err := url.Parse(h.http.URL + "/api/v1/namespaces/default/pods/" + pod + "/portforward")
	if err != nil {
		h.t.Fatal(err)
	}
	tr, up, err := spdy.RoundTripperFor(h.restConfig())
	if err != nil {
		h.t.Fatal(err)
	}
	plain := spdy.NewDialerForStreaming(up, &http.Client{Transport: tr}, http.MethodPost, u)
	ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, h.restConfig())
	if err != nil {
		h.t.Fatal(err)
	}
	fallback := portforward.NewFallbackDialerForStreaming(ws, plain, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	return map[string]httpstream.Dialer{"spdy": plain, "websocket": ws, "kubectl": fallback}
}

// forward starts port forwarding of remote port through d and returns the
// local port.
func forward(t *testing.T, d httpstream.Dialer, remote int, errOut io.Writer) int {
	t.Helper()
	stop, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddressesForStreaming(d, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", remote)}, stop, ready, io.Discard, errOut)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("ForwardPorts = %v before ready", err)
	}
	t.Cleanup(func() {
		close(stop)
		recv(t, errc, "ForwardPorts to return")
	})
	ports, err := pf.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	return int(ports[0].Local)
}

// exchange sends msg to the local port, half-closes, and reads the answer.
func exchange(t *testing.T, local int, msg string) string {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, msg)
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("reading the forwarded answer: %v", err)
	}
	return string(out)
}

func TestPortForward(t *testing.T) {
	lis := upperServer(t)
	h := newHarness(t)
	h.addPod("db", "n1", "c")
	calls := make(chan dialCall, 16)
	h.startAgent("n1", &fakeStreamer{dial: func(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error) {
		calls <- dialCall{pod, port, loopback}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", lis.Addr().String())
	}})
	for name, d := range h.pfDialers("db") {
		t.Run(name, func(t *testing.T) {
			local := forward(t, d, 5432, io.Discard)
			for i := range 3 {
				msg := fmt.Sprintf("hello %d %s", i, strings.Repeat("x", i*100000))
				if got := exchange(t, local, msg); got != strings.ToUpper(msg) {
					t.Errorf("connection %d: got %d bytes, want %d upper-cased", i, len(got), len(msg))
				}
				c := recv(t, calls, "dial")
				if c.port != 5432 || !c.loopback || c.pod.Name != "db" {
					t.Errorf("dialed %+v, want db's port 5432 on its loopback", c)
				}
			}
		})
	}
}

func TestPortForwardDialError(t *testing.T) {
	h := newHarness(t)
	h.addPod("db", "n1", "c")
	h.startAgent("n1", &fakeStreamer{dial: func(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errTest}
	}})
	local := forward(t, h.pfDialers("db")["spdy"], 5432, io.Discard)
	if got := exchange(t, local, "ping"); got != "" {
		t.Errorf("a refused forward answered %q, want nothing", got)
	}
}

func TestPortForwardErrors(t *testing.T) {
	h := newHarness(t)
	h.addPod("elsewhere", "n2", "c")
	h.addPod("unbound", "", "c")
	base := h.http.URL + "/api/v1/namespaces/default/pods/"
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"POST", "elsewhere/portforward", 503},
		{"POST", "unbound/portforward", 400},
		{"PUT", "elsewhere/portforward", 405},
	} {
		if resp, body := h.do(tc.method, base+tc.path, "", nil); resp.StatusCode != tc.code {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.code)
		}
	}
	// The older channel protocol of port forwarding is not served: 400
	// before any upgrade, which makes a client fall back to SPDY.
	h.addPod("db", "n1", "c")
	h.startAgent("n1", &fakeStreamer{})
	resp, body := h.do("GET", base+"db/portforward?ports=80", "", http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Protocol": {"v4.channel.k8s.io"},
	})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "SPDY/3.1+portforward.k8s.io") {
		t.Errorf("v4.channel.k8s.io port forwarding = %d %s, want 400 naming the served protocol", resp.StatusCode, body)
	}
}
