package teardown

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process of /proc.
type proc struct {
	pid, ppid int
	args      []string
	exe       string
}

// listProcs reads every process of root (normally /proc), skipping those
// that end while being read.
func listProcs(root string) []proc {
	entries, _ := os.ReadDir(root)
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p := proc{pid: pid}
		cmdline, err := os.ReadFile(filepath.Join(root, e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a kernel thread
		}
		p.args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		p.exe, _ = os.Readlink(filepath.Join(root, e.Name(), "exe"))
		if stat, err := os.ReadFile(filepath.Join(root, e.Name(), "stat")); err == nil {
			// pid (comm) state ppid …; comm may hold spaces and parentheses.
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
				if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
					p.ppid, _ = strconv.Atoi(f[1])
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// flagValue returns the value of the flag name (-name or --name, with the
// value attached by "=" or in the next word) in args, or "".
func flagValue(args []string, names ...string) string {
	for i, a := range args {
		for _, n := range names {
			for _, dash := range []string{"-", "--"} {
				switch {
				case a == dash+n && i+1 < len(args):
					return args[i+1]
				case strings.HasPrefix(a, dash+n+"="):
					return strings.TrimPrefix(a, dash+n+"=")
				}
			}
		}
	}
	return ""
}

// isMinik reports whether p is a minik server or agent: it runs the file
// self (the binary killall runs from) with the server or agent command.
func isMinik(p proc, self string) bool {
	if len(p.args) < 2 || (p.args[1] != "server" && p.args[1] != "agent") {
		return false
	}
	return p.exe == self || filepath.Base(p.args[0]) == "minik"
}

// isShim reports whether p is a containerd shim of a minik namespace.
func isShim(p proc) bool {
	return len(p.args) > 0 && strings.HasPrefix(filepath.Base(p.args[0]), "containerd-shim") &&
		strings.HasPrefix(flagValue(p.args, "namespace"), "minik-")
}

// agentContainerd returns the agent data directory of a containerd an
// agent started (DIR/containerd/config.toml), or "" when p is none.
func agentContainerd(p proc) string {
	if len(p.args) == 0 || filepath.Base(p.args[0]) != "containerd" {
		return ""
	}
	cfg := flagValue(p.args, "config", "c")
	if filepath.Base(cfg) != "config.toml" || filepath.Base(filepath.Dir(cfg)) != "containerd" || strings.HasPrefix(cfg, "/etc/") {
		return ""
	}
	return filepath.Dir(filepath.Dir(cfg))
}

// descendants returns the pids below pid in procs, deepest last.
func descendants(procs []proc, pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		for _, p := range procs {
			if p.ppid == parent && !slices.Contains(out, p.pid) {
				out = append(out, p.pid)
				queue = append(queue, p.pid)
			}
		}
	}
	return out
}

// terminate sends SIGTERM to pids, waits up to grace for them to end and
// SIGKILLs those left. It returns once all are gone or after a further
// grace.
func terminate(pids []int, grace time.Duration) {
	if len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	if waitGone(pids, grace) {
		return
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(pids, grace)
}

// waitGone reports whether every pid ended (or became a zombie) within d.
func waitGone(pids []int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		alive := false
		for _, pid := range pids {
			if running(pid) {
				alive = true
				break
			}
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
