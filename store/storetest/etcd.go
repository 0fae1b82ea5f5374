package storetest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// etcdStartTimeout bounds the wait for a started etcd to report healthy.
const etcdStartTimeout = 30 * time.Second

// EtcdBinary returns the path of the etcd server binary ($MINIK_ETCD_BIN,
// else etcd on PATH, else /usr/bin/etcd from Debian's etcd-server). When
// there is none the test is skipped, except in CI (CI=true), where the
// setup script installs it and its absence fails the test.
func EtcdBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MINIK_ETCD_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("etcd binary not found; scripts/setup.sh installs etcd-server")
	}
	t.Skip("etcd binary not found (apt-get install etcd-server)")
	return ""
}

// StartEtcd runs a one-member etcd on free loopback ports with its data
// in t.TempDir, waits until it is healthy and kills it when the test
// ends. It returns the client URL. Watch progress notifications come
// every 100 ms.
func StartEtcd(t testing.TB) string {
	t.Helper()
	c := StartEtcdCluster(t, 1)
	return c.Endpoints[0]
}

// EtcdCluster is a loopback etcd cluster run by the test.
type EtcdCluster struct {
	// Endpoints are the members' client URLs, in member order.
	Endpoints []string
	members   []*etcdMember
}

type etcdMember struct {
	name      string
	client    string // client URL
	cmd       *exec.Cmd
	waitc     chan struct{} // closed when cmd has exited
	cleanedUp atomic.Bool   // the test is ending: stop logging
}

// StartEtcdCluster runs an n-member etcd cluster on loopback, as
// StartEtcd does one member, and waits until every member is healthy.
func StartEtcdCluster(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	bin := EtcdBinary(t)
	var err error
	for attempt := 0; attempt < 3; attempt++ { // a free port may be taken meanwhile
		var c *EtcdCluster
		if c, err = startCluster(t, bin, n); err == nil {
			return c
		}
		t.Logf("etcd cluster start attempt %d: %v", attempt+1, err)
	}
	t.Fatalf("starting %d etcd members: %v", n, err)
	return nil
}

func startCluster(t testing.TB, bin string, n int) (*EtcdCluster, error) {
	c, err := RunEtcdCluster(bin, t.TempDir(), n, func(member, line string) { t.Logf("etcd %s: %s", member, line) })
	if err != nil {
		return nil, err
	}
	t.Cleanup(c.Stop)
	return c, nil
}

// RunEtcdCluster runs an n-member etcd cluster on free loopback ports with
// its data under dir and waits until every member is healthy; logf gets
// the members' log lines until Stop. Watch progress notifications come
// every 100 ms. The caller must Stop it.
func RunEtcdCluster(bin, dir string, n int, logf func(member, line string)) (*EtcdCluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	peers := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("m%d", i)
		peers[i] = fmt.Sprintf("%s=http://127.0.0.1:%d", names[i], ports[2*i+1])
	}
	token := fmt.Sprintf("minik-test-%d", time.Now().UnixNano())
	c := &EtcdCluster{}
	for i := range n {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		args := []string{
			"--name", names[i],
			"--data-dir", filepath.Join(dir, names[i]),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(peers, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", token,
			"--experimental-watch-progress-notify-interval", "100ms",
			"--log-level", "error", "--logger", "zap",
		}
		m := &etcdMember{name: names[i], client: client, cmd: exec.Command(bin, args...)}
		m.cmd.Stdout = io.Discard
		m.cmd.Stderr = etcdLog{logf: logf, member: m}
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := m.cmd.Start(); err != nil {
			c.Stop()
			return nil, fmt.Errorf("starting %s: %w", bin, err)
		}
		m.waitc = make(chan struct{})
		go func() { m.cmd.Wait(); close(m.waitc) }()
		c.members = append(c.members, m)
		c.Endpoints = append(c.Endpoints, client)
	}
	for _, m := range c.members {
		if err := m.waitHealthy(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Kill stops member i with SIGKILL and waits for it to exit.
func (c *EtcdCluster) Kill(i int) {
	c.members[i].kill()
}

// Stop kills every member and waits for them to exit.
func (c *EtcdCluster) Stop() {
	for _, m := range c.members {
		m.cleanedUp.Store(true)
		m.kill()
	}
}

func (m *etcdMember) kill() {
	if m.cmd.Process == nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-m.waitc:
	case <-time.After(10 * time.Second):
	}
}

// waitHealthy polls the member's /health until it reports true.
func (m *etcdMember) waitHealthy() error {
	deadline := time.Now().Add(etcdStartTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-m.waitc:
			return fmt.Errorf("etcd %s exited: %v", m.name, m.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(m.client + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"true"`) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd %s not healthy within %v (last error %v)", m.name, etcdStartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// etcdLog hands a member's log lines to logf until the cluster stops.
type etcdLog struct {
	logf   func(member, line string)
	member *etcdMember
}

func (l etcdLog) Write(p []byte) (int, error) {
	if !l.member.cleanedUp.Load() {
		l.logf(l.member.name, strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// EtcdPrefix returns a key prefix in etcd unique to this test, so tests
// can share one etcd and each see an empty store.
func EtcdPrefix(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("/test/%s/%d/", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
}
