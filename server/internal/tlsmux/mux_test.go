package tlsmux_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/minik-dev/minik/server/internal/tlsmux"
	"github.com/minik-dev/minik/server/pki"
)

// testTimeout bounds every wait; it is not a speed assertion.
const testTimeout = 10 * time.Second

const testProto = "minik-test/1"

// accepted is a connection a listener of the mux handed over.
type accepted struct {
	listener string
	conn     *tls.Conn
}

// testMux serves a Mux on 127.0.0.1 with testProto matched; every
// connection it hands over is sent to the returned channel.
type testMux struct {
	t      *testing.T
	mux    *tlsmux.Mux
	addr   string
	roots  *x509.CertPool
	conns  chan accepted
	served chan error

	closeOnce sync.Once
	closeErr  error // what Serve returned after Close
}

func newTestMux(t *testing.T, timeout time.Duration) *testMux {
	t.Helper()
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ca.ServerTLSConfig()
	cfg.NextProtos = append([]string{testProto}, cfg.NextProtos...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := tlsmux.New(ln, tlsmux.Config{
		TLS: cfg, HandshakeTimeout: timeout, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	tm := &testMux{
		t: t, mux: m, addr: ln.Addr().String(), roots: x509.NewCertPool(),
		conns: make(chan accepted, 16), served: make(chan error, 1),
	}
	tm.roots.AddCert(ca.CACert())
	for name, l := range map[string]net.Listener{"matched": m.Match(testProto), "default": m.Default()} {
		go tm.acceptAll(name, l)
		t.Cleanup(func() { l.Close() })
	}
	go func() { tm.served <- m.Serve() }()
	t.Cleanup(func() {
		if err := tm.close(); err != nil {
			t.Errorf("Serve() = %v, want nil after Close", err)
		}
	})
	return tm
}

// close closes the mux (once) and returns what Serve returned.
func (tm *testMux) close() error {
	tm.closeOnce.Do(func() {
		if err := tm.mux.Close(); err != nil {
			tm.t.Errorf("Close() = %v", err)
		}
		tm.closeErr = tm.wait()
	})
	return tm.closeErr
}

// acceptAll sends what l accepts to tm.conns until l is closed.
func (tm *testMux) acceptAll(name string, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		tm.conns <- accepted{listener: name, conn: c.(*tls.Conn)}
	}
}

// wait returns what Serve returned.
func (tm *testMux) wait() error {
	select {
	case err := <-tm.served:
		return err
	case <-time.After(testTimeout):
		tm.t.Fatal("Serve did not return")
		return nil
	}
}

// dial completes a TLS handshake offering protos.
func (tm *testMux) dial(protos []string) *tls.Conn {
	tm.t.Helper()
	d := tls.Dialer{Config: &tls.Config{RootCAs: tm.roots, ServerName: "localhost", NextProtos: protos}}
	c, err := d.Dial("tcp", tm.addr)
	if err != nil {
		tm.t.Fatalf("dialing with ALPN %q: %v", protos, err)
	}
	tm.t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn)
}

// next returns the next connection handed over.
func (tm *testMux) next() accepted {
	tm.t.Helper()
	select {
	case a := <-tm.conns:
		return a
	case <-time.After(testTimeout):
		tm.t.Fatal("no connection was handed over")
		return accepted{}
	}
}

func TestMuxRoutesByNegotiatedProtocol(t *testing.T) {
	tm := newTestMux(t, 0)
	for _, tc := range []struct {
		name         string
		offer        []string
		wantListener string
		wantProto    string
	}{
		{name: "matched protocol first", offer: []string{testProto, "h2"}, wantListener: "matched", wantProto: testProto},
		{name: "matched protocol after h2", offer: []string{"h2", testProto}, wantListener: "matched", wantProto: testProto},
		{name: "h2", offer: []string{"h2"}, wantListener: "default", wantProto: "h2"},
		{name: "http/1.1", offer: []string{"http/1.1"}, wantListener: "default", wantProto: "http/1.1"},
		{name: "no ALPN", offer: nil, wantListener: "default", wantProto: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := tm.dial(tc.offer)
			got := tm.next()
			if got.listener != tc.wantListener {
				t.Errorf("offering %q: handed to the %s listener, want %s", tc.offer, got.listener, tc.wantListener)
			}
			st := got.conn.ConnectionState()
			if !st.HandshakeComplete || st.NegotiatedProtocol != tc.wantProto {
				t.Errorf("handed over with handshake complete %v, protocol %q; want true, %q", st.HandshakeComplete, st.NegotiatedProtocol, tc.wantProto)
			}
			// The connection is usable end to end.
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			if _, err := io.ReadFull(got.conn, buf); err != nil || buf[0] != 'x' {
				t.Errorf("read %q, %v; want \"x\"", buf, err)
			}
		})
	}
}

func TestMuxSilentClientDoesNotBlockOthers(t *testing.T) {
	tm := newTestMux(t, 200*time.Millisecond)
	silent, err := net.Dial("tcp", tm.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tm.dial([]string{testProto})
	if got := tm.next(); got.listener != "matched" {
		t.Errorf("handed to the %s listener, want matched", got.listener)
	}
	// The handshake timeout ends the silent connection.
	silent.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("reading the silent connection: %v, want EOF once the handshake timed out", err)
	}
}

func TestMuxCloseAbortsHandshakes(t *testing.T) {
	tm := newTestMux(t, time.Hour)
	silent, err := net.Dial("tcp", tm.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A handshake completes, so the silent one is being waited for.
	tm.dial(nil)
	tm.next()
	if err := tm.close(); err != nil {
		t.Errorf("Serve() = %v, want nil after Close", err)
	}
	silent.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("reading the silent connection: %v, want EOF once the mux closed", err)
	}
	if _, err := net.Dial("tcp", tm.addr); err == nil {
		t.Error("dialing after Close succeeded, want refused")
	}
}

func TestMuxListenerClosedElsewhere(t *testing.T) {
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := tlsmux.New(ln, tlsmux.Config{TLS: ca.ServerTLSConfig()})
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	ln.Close()
	select {
	case err := <-served:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve() = %v, want net.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return")
	}
}

func TestListenerCloseEndsAccept(t *testing.T) {
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m := tlsmux.New(ln, tlsmux.Config{TLS: ca.ServerTLSConfig()})
	l := m.Default()
	if l.Addr().String() != ln.Addr().String() {
		t.Errorf("Addr() = %v, want %v", l.Addr(), ln.Addr())
	}
	acc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		acc <- err
	}()
	for range 2 {
		if err := l.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	}
	select {
	case err := <-acc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept() = %v, want net.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Accept did not return")
	}
}
