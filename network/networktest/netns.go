// Package networktest has helpers for tests of package network and its
// users: throwaway network namespaces, servers and clients inside them, and
// a Recorder standing in for iptables-restore.
package networktest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minik-dev/minik/network/internal/netns"
)

// RequireIntegration skips t unless MINIK_INTEGRATION=1 and the test runs as
// root.
func RequireIntegration(t testing.TB) {
	t.Helper()
	if os.Getenv("MINIK_INTEGRATION") != "1" {
		t.Skip("integration test: set MINIK_INTEGRATION=1")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root")
	}
}

// Name returns prefix followed by random hex, short enough for an
// interface name when prefix has at most 7 bytes.
func Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NetNS creates a named network namespace with lo up, deleted when t ends.
// It returns the namespace name and its path (/run/netns/NAME).
func NetNS(t testing.TB) (name, path string) {
	t.Helper()
	name = Name("minikt-")
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name, "/run/netns/" + name
}

// Run runs a command with a 30 s timeout and fails t if it fails. It
// returns the command's standard output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

// InNetNS runs fn on an OS thread that has joined the network namespace at
// path (see package network/internal/netns).
func InNetNS(path string, fn func() error) error { return netns.Do(path, fn) }

// Serve listens on addr (host:port) inside the namespace at nsPath (the
// current namespace when empty) and answers every connection with
// greeting and a newline. It stops when t ends.
func Serve(t testing.TB, nsPath, addr, greeting string) net.Addr {
	t.Helper()
	var l net.Listener
	listen := func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	}
	var err error
	if nsPath == "" {
		err = listen()
	} else {
		err = InNetNS(nsPath, listen)
	}
	if err != nil {
		t.Fatalf("listen on %s in %q: %v", addr, nsPath, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintln(c, greeting)
			c.Close()
		}
	}()
	return l.Addr()
}

// Greet connects to addr from the namespace at nsPath (the current one
// when empty) and returns the first line the server sends. It gives up
// after timeout.
func Greet(nsPath, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	}
	var err error
	if nsPath == "" {
		err = dial()
	} else {
		err = InNetNS(nsPath, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}

// EventuallyGreet retries Greet until it returns want or timeout passes.
func EventuallyGreet(t testing.TB, nsPath, addr, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := Greet(nsPath, addr, time.Second)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Greet(%q, %s) = %q, %v; want %q", nsPath, addr, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
