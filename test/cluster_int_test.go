//go:build integration

package test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minik-dev/minik/network/networktest"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// The multi-node harness: a bridge on the host stands for the machines'
// network; each agent runs in a network namespace of its own, attached to
// the bridge by a veth pair, with an address on it as its node IP.

const (
	bridgeName   = "mk-e2e0"
	bridgeSubnet = "172.31.250"
)

// run runs a command and fails the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// requireRoot skips where the harness cannot work; CI runs as root.
func requireRoot(t testing.TB) {
	binary(t)
	if os.Geteuid() != 0 {
		t.Fatalf("multi-node tests need root")
	}
}

// hostBridge creates the bridge with the server's address on it.
func hostBridge(t testing.TB) string {
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
	t       testing.TB
	name    string
	netns   string
	ip      string
	dataDir string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	args    []string
}

// startAgent creates node i's namespace and starts its agent, joined to s.
func startAgent(t testing.TB, s *serverProc, serverIP string, i int, extra ...string) *agentProc {
	return startAgentWithImages(t, s, serverIP, i, nil, extra...)
}

// startAgentWithImages is startAgent with images, if image is not nil,
// that image writes into the agent's image directory beside busybox.
func startAgentWithImages(t testing.TB, s *serverProc, serverIP string, i int, image func(testing.TB, string), extra ...string) *agentProc {
	a := newAgent(t, s, serverIP, i, image, extra...)
	a.start()
	t.Cleanup(a.kill)
	return a
}

// newAgent is startAgentWithImages up to starting the agent: the node's
// namespace is ready, its agent not started.
func newAgent(t testing.TB, s *serverProc, serverIP string, i int, image func(testing.TB, string), extra ...string) *agentProc {
	a := &agentProc{
		t: t, name: fmt.Sprintf("node%d", i), netns: fmt.Sprintf("mk-e2e-n%d", i),
		ip: fmt.Sprintf("%s.%d", bridgeSubnet, 10+i), dataDir: t.TempDir(),
	}
	host, peer := fmt.Sprintf("mke2e%dh", i), "eth0"
	if err := os.MkdirAll(filepath.Join(a.dataDir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeBusybox(t, filepath.Join(a.dataDir, "images"))
	if image != nil {
		image(t, filepath.Join(a.dataDir, "images"))
	}
	exec.Command("ip", "link", "del", host).Run()
	exec.Command("ip", "netns", "del", a.netns).Run()
	run(t, "ip", "netns", "add", a.netns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", a.netns).Run()
	})
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
	// nsenter switches only the network namespace: `ip netns exec` would
	// also remount /sys and hide the cgroup hierarchy from runc.
	a.args = append([]string{"--net=/run/netns/" + a.netns, s.bin, "agent",
		"--join", fmt.Sprintf("https://%s:%d", serverIP, s.port), "--token", strings.TrimSpace(string(token)),
		"--data-dir", a.dataDir, "--node-name", a.name, "--node-ip", a.ip}, extra...)
	return a
}

func (a *agentProc) start() {
	a.cmd = exec.Command("nsenter", a.args...)
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
	if a.t.Failed() {
		a.t.Logf("agent %s log (tail):\n%s", a.name, tail(a.log.String(), 40))
	}
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	a.cmd.Wait()
	a.cmd = nil
	// Shims re-parent to init and outlive the group: end what runs from
	// this agent's data dir.
	exec.Command("pkill", "-9", "-f", a.dataDir).Run()
	time.Sleep(100 * time.Millisecond)
	unmountUnder(a.dataDir)
}

// unmountUnder detaches every mount below dir (container root
// filesystems, the sandbox's files), deepest first, so the test's temp
// dir can be removed.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// startClusterServer starts a server reachable from the namespaces.
func startClusterServer(t testing.TB, extra ...string) (*serverProc, string) {
	ip := hostBridge(t)
	s := &serverProc{t: t, bin: binary(t), dataDir: t.TempDir(), port: freePort(t),
		args: append([]string{"--tls-san", ip}, extra...)}
	s.startWith("0.0.0.0")
	t.Cleanup(s.kill)
	return s, ip
}

// writeBusybox puts the test image (busybox from the host) into dir.
func writeBusybox(t testing.TB, dir string) {
	t.Helper()
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatalf("busybox image: %v", err)
	}
	if _, err := runtimetest.WriteOCIArchive(dir, "docker.io/library/busybox:latest", img); err != nil {
		t.Fatalf("writing image: %v", err)
	}
}

// inNode runs a command in node a's network namespace.
func (a *agentProc) inNode(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + a.netns}, args...)...).CombinedOutput()
	return string(out), err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// httpGet fetches http://addr/path from inside node a's network namespace
// and returns the response body.
func (a *agentProc) httpGet(addr, path string) (string, error) {
	var body string
	err := networktest.InNetNS("/run/netns/"+a.netns, func() error {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
		data, err := io.ReadAll(conn)
		if _, b, ok := strings.Cut(string(data), "\r\n\r\n"); ok {
			body = b
		}
		return err
	})
	return body, err
}
