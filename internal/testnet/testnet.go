// Package testnet holds network fixtures for tests.
package testnet

import (
	"net"
	"testing"
)

// SilentListener listens on a loopback TCP port and accepts every
// connection, then neither reads nor writes: a peer that hung. The
// listener and the connections it accepted are closed when the test ends.
func SilentListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln
}
