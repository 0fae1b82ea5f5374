//go:build integration

package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The multi-node harness: a bridge on the host stands for the machines'
// network; each agent runs in a network namespace of its own, attached to
// the bridge by a veth pair, with an address on it as its node IP.

const (
	bridgeName   = "mk-e2e0"
	bridgeSubnet = "172.31.250"
)

// run runs a command and fails the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// requireRoot skips where the harness cannot work; CI runs as root.
func requireRoot(t *testing.T) {
	binary(t)
	if os.Geteuid() != 0 {
		t.Fatalf("multi-node tests need root")
	}
}

// hostBridge creates the bridge with the server's address on it.
func hostBridge(t *testing.T) string {
	requireRoot(t)
	exec.Command("ip", "link", "del", bridgeName).Run()
	run(t, "ip", "link", "add", bridgeName, "type", "bridge")
	run(t, "ip", "addr", "add", bridgeSubnet+".1/24", "dev", bridgeName)
	run(t, "ip", "link", "set", bridgeName, "up")
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridgeName).Run() })
	return bridgeSubnet + ".1"
}

// agentProc is a `minik agent` in its own network namespace.
type agentProc struct {
	t       *testing.T
	name    string
	netns   string
	ip      string
	dataDir string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	args    []string
}

// startAgent creates node i's namespace and starts its agent, joined to s.
func startAgent(t *testing.T, s *serverProc, serverIP string, i int, extra ...string) *agentProc {
	a := &agentProc{
		t: t, name: fmt.Sprintf("node%d", i), netns: fmt.Sprintf("mk-e2e-n%d", i),
		ip: fmt.Sprintf("%s.%d", bridgeSubnet, 10+i), dataDir: t.TempDir(),
	}
	host, peer := fmt.Sprintf("mke2e%dh", i), "eth0"
	exec.Command("ip", "netns", "del", a.netns).Run()
	run(t, "ip", "netns", "add", a.netns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", a.netns).Run() })
	run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", a.netns)
	run(t, "ip", "link", "set", host, "master", bridgeName, "up")
	in := func(args ...string) { run(t, "ip", append([]string{"netns", "exec", a.netns}, args...)...) }
	in("ip", "addr", "add", a.ip+"/24", "dev", peer)
	in("ip", "link", "set", peer, "up")
	in("ip", "link", "set", "lo", "up")
	in("ip", "route", "add", "default", "via", serverIP)
	token, err := os.ReadFile(filepath.Join(s.dataDir, "token"))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	a.args = append([]string{"netns", "exec", a.netns, s.bin, "agent",
		"--join", fmt.Sprintf("https://%s:%d", serverIP, s.port), "--token", strings.TrimSpace(string(token)),
		"--data-dir", a.dataDir, "--node-name", a.name, "--node-ip", a.ip}, extra...)
	a.start()
	t.Cleanup(a.kill)
	return a
}

func (a *agentProc) start() {
	a.cmd = exec.Command("ip", a.args...)
	a.log = &bytes.Buffer{}
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		a.t.Fatalf("starting agent %s: %v", a.name, err)
	}
}

// kill ends the agent and everything it started (its containerd, shims
// and containers are in its process group or reparented to it).
func (a *agentProc) kill() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	a.cmd.Wait()
	a.cmd = nil
	// Shims re-parent to init and outlive the group: end what runs from
	// this agent's data dir.
	exec.Command("pkill", "-9", "-f", a.dataDir).Run()
	time.Sleep(100 * time.Millisecond)
}

// startClusterServer starts a server reachable from the namespaces.
func startClusterServer(t *testing.T, extra ...string) (*serverProc, string) {
	ip := hostBridge(t)
	s := &serverProc{t: t, bin: binary(t), dataDir: t.TempDir(), port: freePort(t),
		args: append([]string{"--tls-san", ip}, extra...)}
	s.startWith("0.0.0.0")
	t.Cleanup(s.kill)
	return s, ip
}
