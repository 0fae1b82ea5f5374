//go:build integration

package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// residueInner marks the re-executed test running inside its own
// namespaces.
const residueInner = "MINIK_RESIDUE_INNER"

// residueNodes are the node names of the residue test, whose cgroups it
// watches.
var residueNodes = []string{"zr-server", "node7"}

// TestIntegrationZeroResidue runs an all-in-one server (with a pod and a
// Service) and a second node in a network namespace, runs `minik
// killall`, then `minik uninstall` (which removes the data, config, unit
// and binary), and checks that the host is as before: links, addresses, routes, iptables,
// mounts, the nodes' cgroups, processes and files.
//
// The test re-executes itself in new process, mount and network
// namespaces, so that killall sees only this test's processes and the
// snapshots only its own network and mounts, whatever else runs on the
// host.
func TestIntegrationZeroResidue(t *testing.T) {
	requireRoot(t)
	if os.Getenv(residueInner) != "1" {
		// bash as PID 1 reaps the orphans (shims re-parent to it); the
		// test binary must not be PID 1.
		cmd := exec.Command("unshare", "--pid", "--mount", "--net", "--fork", "--mount-proc", "--propagation", "private",
			"bash", "-c", `"$0" "$@"; exit $?`, os.Args[0], "-test.run", "^TestIntegrationZeroResidue$", "-test.v", "-test.timeout", "9m")
		cmd.Env = append(os.Environ(), residueInner+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in namespaces:\n%s", out)
		if err != nil {
			t.Fatalf("the test in its namespaces: %v", err)
		}
		return
	}
	run(t, "mkdir", "-p", "/run/netns")
	run(t, "mount", "-t", "tmpfs", "tmpfs", "/run/netns") // ours alone: other tests' namespaces stay invisible
	run(t, "ip", "link", "set", "lo", "up")

	base := t.TempDir()
	serverData := filepath.Join(base, "server")
	configFile := filepath.Join(base, "config.yaml")
	before := snapshot(t, serverData)

	t.Run("cluster", func(t *testing.T) {
		ip := hostBridge(t)
		if err := os.WriteFile(configFile, []byte("node-name: zr-server\nnode-ip: "+ip+"\ntls-san: ["+ip+"]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(serverData, "agent", "images"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeBusybox(t, filepath.Join(serverData, "agent", "images"))
		s := &serverProc{t: t, bin: binary(t), dataDir: serverData, port: freePort(t)}
		s.cmd = exec.Command(s.bin, "server", "--config", configFile, "--data-dir", serverData,
			"--https-listen-port", fmt.Sprint(s.port), "--restart-backoff", "1s")
		s.log = &bytes.Buffer{}
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.kill)
		s.waitReady()
		startAgent(t, s, ip, 7)

		s.mustMinik(residueWorkload, "apply", "-f", "-")
		for _, pod := range []string{"zr-a", "zr-b"} {
			eventually(t, 150*time.Second, "pod "+pod+" running", func() error {
				if out, _ := s.minik("", "get", "pod", pod, "-o", "jsonpath={.status.phase}"); out != "Running" {
					return fmt.Errorf("phase %q", out)
				}
				return nil
			})
		}
		// The server's node reports the address it was configured with.
		if out := s.mustMinik("", "get", "node", "zr-server", "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"); out != ip {
			t.Errorf("zr-server InternalIP = %q, want %q", out, ip)
		}

		t.Run("client habits", func(t *testing.T) { clientHabits(t, s, base) })

		// Without systemctl: the host's units are not this test's.
		killall := exec.Command(s.bin, "killall", "--data-dir", serverData, "--node-name", "zr-server")
		killall.Env = append(os.Environ(), "PATH="+pathWithout(t, "systemctl"))
		out, err := killall.CombinedOutput()
		if err != nil {
			t.Fatalf("minik killall: %v\n%s", err, out)
		}
		t.Logf("minik killall:\n%s", out)
		// Before the harness's own cleanup (which would hide what killall
		// left): no process, mount or cgroup of minik remains.
		now := snapshot(t, serverData)
		for _, k := range []string{"processes", "mounts", "cgroups"} {
			if diff := cmp.Diff(before[k], now[k]); diff != "" {
				t.Errorf("%s after killall (-before +after):\n%s", k, diff)
			}
		}
		uninstall(t, s.bin, serverData)
		if err := os.Remove(configFile); err != nil {
			t.Error(err)
		}
	})

	after := snapshot(t, serverData)
	for _, k := range sortedKeys(before) {
		if diff := cmp.Diff(before[k], after[k]); diff != "" {
			t.Errorf("%s differ (-before +after):\n%s", k, diff)
		}
	}
}

// uninstall runs `minik uninstall` as installed (from /usr/local/bin,
// with a unit, a kubectl link and /etc/minik) and checks that those and
// dataDir are gone. /etc and /usr/local/bin are this test's own overlays
// meanwhile, and systemctl is out of PATH: the host's systemd and files
// stay untouched.
func uninstall(t *testing.T, bin, dataDir string) {
	for _, d := range []string{"/etc", "/usr/local/bin"} {
		upper, work := t.TempDir(), t.TempDir()
		run(t, "mount", "-t", "overlay", "overlay", "-o", "lowerdir="+d+",upperdir="+upper+",workdir="+work, d)
		defer syscall.Unmount(d, syscall.MNT_DETACH)
	}
	installed := "/usr/local/bin/minik"
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{
		installed:                           string(data),
		"/etc/minik/config.yaml":            "node-name: zr-server\n",
		"/etc/minik/minik.env":              "MINIK_TOKEN=x\n",
		"/etc/systemd/system/minik.service": "[Service]\nExecStart=" + installed + " server\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("minik", "/usr/local/bin/kubectl"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(installed, "uninstall", "--data-dir", dataDir, "--node-name", "zr-server")
	cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "systemctl"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("minik uninstall: %v\n%s", err, out)
	}
	for _, p := range []string{installed, "/usr/local/bin/kubectl", "/etc/minik", "/etc/systemd/system/minik.service", dataDir} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after uninstall", p)
		}
	}
}

// pathWithout returns a PATH of one directory holding links to the
// commands of the usual directories but the one named.
func pathWithout(t *testing.T, name string) string {
	dir := t.TempDir()
	for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Name() != name {
				os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())) // the first wins
			}
		}
	}
	return dir
}

// clientHabits checks kubectl's global flags before the verb, shell
// completion of live objects and the binary acting as kubectl under
// that name, against the residue test's cluster.
func clientHabits(t *testing.T, s *serverProc, dir string) {
	out := s.mustMinik("", "--kubeconfig", s.kubeconfig(), "-n", "default", "get", "pods", "-o", "name")
	if !strings.Contains(out, "pod/zr-a") || !strings.Contains(out, "pod/zr-b") {
		t.Errorf("minik --kubeconfig F -n default get pods = %q, want zr-a and zr-b", out)
	}
	if out, code := s.minik("", "-n", "kube-system", "get", "pod", "zr-a"); code == 0 || !strings.Contains(out, "NotFound") {
		t.Errorf("minik -n kube-system get pod zr-a = %q (exit %d), want NotFound (the namespace applied)", out, code)
	}
	out = s.mustMinik("", "get", "pod", "--generate-bash-completion")
	if !strings.Contains(out, "zr-a\n") || !strings.Contains(out, "zr-b\n") {
		t.Errorf("completion of minik get pod = %q, want the pods' names", out)
	}
	// The bash script, as bash runs it on TAB after "minik get pod ".
	script := `source <("$MINIK" completion bash); COMP_WORDS=("$MINIK" get pod ""); COMP_CWORD=3; _minik_complete; echo "${COMPREPLY[*]}"`
	bash := exec.Command("bash", "-c", script)
	bash.Env = append(os.Environ(), "MINIK="+s.bin, "KUBECONFIG="+s.kubeconfig())
	if out, err := bash.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "zr-a zr-b" {
		t.Errorf("bash completion of minik get pod = %q, %v; want \"zr-a zr-b\"", out, err)
	}
	link := filepath.Join(dir, "kubectl")
	if err := os.Symlink(s.bin, link); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(link)
	cmd := exec.Command(link, "--kubeconfig", s.kubeconfig(), "get", "nodes", "-o", "wide")
	wide, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(wide), "zr-server") || !strings.Contains(string(wide), "INTERNAL-IP") {
		t.Errorf("kubectl (link) get nodes -o wide = %q, %v; want the nodes with their addresses", wide, err)
	}
	for _, l := range strings.Split(string(wide), "\n") {
		if strings.HasPrefix(l, "zr-server") || strings.HasPrefix(l, "node7") {
			if f := strings.Fields(l); len(f) < 6 || f[5] == "<none>" {
				t.Errorf("node line %q has no INTERNAL-IP", l)
			}
		}
	}
}

const residueWorkload = `apiVersion: v1
kind: Pod
metadata: {name: zr-a, labels: {app: zr}}
spec:
  nodeName: zr-server
  containers:
  - {name: web, image: busybox, imagePullPolicy: IfNotPresent, command: ["httpd", "-f", "-p", "8080"]}
---
apiVersion: v1
kind: Pod
metadata: {name: zr-b, labels: {app: zr}}
spec:
  nodeName: node7
  containers:
  - {name: web, image: busybox, imagePullPolicy: IfNotPresent, command: ["httpd", "-f", "-p", "8080"]}
---
apiVersion: v1
kind: Service
metadata: {name: zr}
spec:
  type: NodePort
  selector: {app: zr}
  ports: [{port: 80, targetPort: 8080}]
`

// snapshot records what the residue test compares, by kind.
func snapshot(t *testing.T, dataDir string) map[string][]string {
	t.Helper()
	lines := func(name string, args ...string) []string {
		return strings.Split(strings.TrimSpace(run(t, name, args...)), "\n")
	}
	s := map[string][]string{
		"links":     lines("ip", "-br", "link"),
		"addresses": lines("ip", "-br", "addr"),
		"routes":    lines("ip", "route", "show", "table", "all"),
		"iptables":  iptablesRules(run(t, "iptables-save")),
		"mounts":    mountPoints(t),
		"cgroups":   nodeCgroups(),
		"processes": processes(t),
		"files":     filesUnder(dataDir),
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nft is needed to record the host's nftables rules (scripts/setup.sh installs nftables): %v", err)
	}
	s["nft"] = nftRules(lines("nft", "list", "ruleset"))
	return s
}

var (
	counters    = regexp.MustCompile(`\[\d+:\d+\]`)
	nftCounters = regexp.MustCompile(`counter packets \d+ bytes \d+`)
)

// nftRules is the ruleset without the packet and byte counts, which
// traffic changes, leaving out, as iptablesRules does, tables that hold
// nothing but empty base chains that accept (a table of iptables-nft
// appears once anything looked at it).
func nftRules(ls []string) []string {
	var out, table []string
	empty := true
	for _, l := range ls {
		l = nftCounters.ReplaceAllString(l, "counter")
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "table "):
			table, empty = []string{l}, true
		case l == "}":
			if !empty {
				out = append(out, append(table, l)...)
			}
			table = nil
		case table == nil:
			if t != "" {
				out = append(out, l)
			}
		default:
			table = append(table, l)
			if t != "" && t != "}" && !builtinChain.MatchString(t) && !baseChainAccept.MatchString(t) {
				empty = false
			}
		}
	}
	return out
}

var (
	builtinChain    = regexp.MustCompile(`^chain (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) \{$`)
	baseChainAccept = regexp.MustCompile(`^type \w+ hook \w+ priority [\w-]+; policy accept;$`)
)

// iptablesRules returns iptables-save's chains and rules without
// comments and counters, leaving out tables that hold no rule and no
// chain of their own (a table appears once anything looked at it).
func iptablesRules(save string) []string {
	var out, table []string
	hasRules := false
	for _, l := range strings.Split(save, "\n") {
		l = counters.ReplaceAllString(l, "[0:0]")
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "*"):
			table, hasRules = []string{l}, false
		case l == "COMMIT":
			if hasRules {
				out = append(out, append(table, l)...)
			}
		default:
			table = append(table, l)
			builtin := regexp.MustCompile(`^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT`).MatchString(l)
			if !builtin {
				hasRules = true
			}
		}
	}
	return out
}

// mountPoints lists this mount namespace's mount points but the network
// namespaces' files, which are the harness's.
func mountPoints(t *testing.T) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && !strings.HasPrefix(f[4], "/run/netns/") {
			out = append(out, f[4]+" "+f[len(f)-3])
		}
	}
	sort.Strings(out)
	return out
}

// nodeCgroups lists the cgroups of the test's nodes in every hierarchy.
func nodeCgroups() []string {
	var out []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		for _, n := range residueNodes {
			filepath.WalkDir(filepath.Join(r, "minik-"+n), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					out = append(out, p)
				}
				return nil
			})
		}
	}
	sort.Strings(out)
	return out
}

// processes lists the live processes of this process namespace but PID 1
// (the reaping shell) and this test.
func processes(t *testing.T) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // exited, not yet reaped
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	sort.Strings(out)
	return out
}

// filesUnder lists the files below dir.
func filesUnder(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func sortedKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
