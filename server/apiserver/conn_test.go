package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/store/storetest"
)

// connWait bounds each wait for the server; it is not a speed assertion.
const connWait = 10 * time.Second

// anyone authenticates every request as a user with no rights.
type anyone struct{}

func (anyone) Authenticate(*http.Request) (auth.User, bool) { return auth.User{Name: "nobody"}, true }

// denyAll authorizes nothing.
type denyAll struct{}

func (denyAll) Authorize(context.Context, auth.User, auth.Attributes) (bool, string) {
	return false, "denied"
}

// slowBodyServer serves a Server made with cfg over TLS (HTTP/1.1).
func slowBodyServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Store = storetest.New(t)
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureNamespaces(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// sendSlowBody opens a connection to ts and sends the headers of a POST
// whose body of 100,000 bytes it starts and never finishes, then reads
// the response. It returns the response and the connection's reader.
func sendSlowBody(t *testing.T, ts *httptest.Server) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	tc := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", ts.Listener.Addr().String(), tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(connWait))
	req := "POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: minik\r\n" +
		"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"apiVersion\":\"v1\","
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response to a request whose body never ends: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return resp, br, conn
}

// expectClosed fails t unless the server closes the connection (reading
// from it ends) before connWait.
func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	_, err := br.ReadByte()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("the server kept the connection open for %v after answering", connWait)
	case err == nil:
		t.Errorf("the server sent more after its answer")
	}
}

// A request that is refused (401 without credentials, 403 without
// rights) is answered at once, without its body, and its connection is
// closed: it cannot be held open by a body that never ends.
func TestRefusedRequestClosesConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		code int
	}{
		{"unauthenticated", Config{Authenticator: refuseAll{}, Authorizer: denyAll{}}, http.StatusUnauthorized},
		{"forbidden", Config{Authenticator: anyone{}, Authorizer: denyAll{}}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, br, _ := sendSlowBody(t, slowBodyServer(t, tc.cfg))
			if resp.StatusCode != tc.code || !resp.Close {
				t.Errorf("response = %d, Connection: close %v; want %d closing the connection", resp.StatusCode, resp.Close, tc.code)
			}
			expectClosed(t, br)
		})
	}
}

// A body that does not arrive within Config.BodyTimeout is answered with
// 408 and its connection closed.
func TestSlowBodyTimesOut(t *testing.T) {
	resp, br, _ := sendSlowBody(t, slowBodyServer(t, Config{BodyTimeout: 100 * time.Millisecond}))
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("response = %d, want 408", resp.StatusCode)
	}
	expectClosed(t, br)
}
