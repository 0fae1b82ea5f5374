package networktest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// ServeUDP answers every datagram to addr (host:port) inside the
// namespace at nsPath (the current one when empty) with greeting. It stops
// when t ends.
func ServeUDP(t testing.TB, nsPath, addr, greeting string) {
	t.Helper()
	var c net.PacketConn
	err := InNetNS(nsPath, func() (err error) {
		c, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on udp %s in %q: %v", addr, nsPath, err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, peer, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo([]byte(greeting), peer)
		}
	}()
}

// DialUDP returns a UDP socket in the namespace at nsPath connected to
// addr, closed when t ends. Reusing it keeps the source port, and with it
// the conntrack entry, of earlier datagrams.
func DialUDP(t testing.TB, nsPath, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	err := InNetNS(nsPath, func() (err error) {
		c, err = net.Dial("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("dial udp %s in %q: %v", addr, nsPath, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// AskUDP sends a datagram on c and returns the reply, waiting up to
// timeout.
func AskUDP(c net.Conn, timeout time.Duration) (string, error) {
	if _, err := c.Write([]byte("?")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("udp reply from %s: %w", c.RemoteAddr(), err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}
