//go:build integration

package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the minik binary under test.
func binary(t testing.TB) string {
	t.Helper()
	if os.Getenv("MINIK_INTEGRATION") != "1" {
		t.Skip("set MINIK_INTEGRATION=1 to run integration tests")
	}
	b := os.Getenv("MINIK_BINARY")
	if b == "" {
		t.Fatalf("MINIK_BINARY must name the built minik binary")
	}
	return b
}

// serverProc is a `minik server` child process.
type serverProc struct {
	t       testing.TB
	bin     string
	dataDir string
	port    int
	args    []string
	cmd     *exec.Cmd
	log     *bytes.Buffer
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts `minik server --disable-agent` on a free port and
// waits for /readyz.
func startServer(t testing.TB, extra ...string) *serverProc {
	s := &serverProc{t: t, bin: binary(t), dataDir: t.TempDir(), port: freePort(t), args: extra}
	s.start()
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *serverProc) start() { s.startWith("127.0.0.1") }

// startWith starts the server bound to bind.
func (s *serverProc) startWith(bind string) {
	s.t.Helper()
	args := append([]string{"server", "--disable-agent", "--data-dir", s.dataDir,
		"--https-listen-port", fmt.Sprint(s.port), "--bind-address", bind}, s.args...)
	s.cmd = exec.Command(s.bin, args...)
	s.log = &bytes.Buffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting server: %v", err)
	}
	s.waitReady()
}

func (s *serverProc) url() string { return fmt.Sprintf("https://127.0.0.1:%d", s.port) }

func (s *serverProc) kubeconfig() string { return filepath.Join(s.dataDir, "admin.kubeconfig") }

func (s *serverProc) waitReady() {
	s.t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(s.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := os.Stat(s.kubeconfig()); err == nil {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("server not ready within 30s; log:\n%s", s.log)
}

// kill sends SIGKILL to the server's process group and waits for it.
func (s *serverProc) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if s.t.Failed() {
		s.t.Logf("server log (tail):\n%s", tail(s.log.String(), 40))
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
}

// minik runs a client subcommand against the server and returns its
// combined output and exit code.
func (s *serverProc) minik(stdin string, args ...string) (string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig())
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("running minik %v: %v", args, err)
	}
	return string(out), code
}

// mustMinik is minik that fails the test on a non-zero exit.
func (s *serverProc) mustMinik(stdin string, args ...string) string {
	s.t.Helper()
	out, code := s.minik(stdin, args...)
	if code != 0 {
		s.t.Fatalf("minik %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// eventually polls f until it returns nil or the timeout passes: the
// one way the tests wait for a condition.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}
