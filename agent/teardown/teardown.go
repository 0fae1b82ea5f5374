package teardown

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/minik-dev/minik/agent/servicenet"
	"github.com/minik-dev/minik/internal/defaults"
)

// Config says what Run removes beyond what it finds running.
type Config struct {
	// DataDirs are data directories whose mounts go, besides those named
	// on the command lines of the processes Run stops. Empty means
	// defaults.ServerDataDir (the embedded and a lone agent's are below).
	DataDirs []string
	// NodeNames are nodes whose cgroups (/minik-NODE) go, besides those
	// of the processes Run stops. Empty means the host name.
	NodeNames []string
	// Grace is how long servers, agents and containerd get to end after
	// SIGTERM before SIGKILL; 0 means 10 s.
	Grace time.Duration
	// Logger receives what is removed; nil discards it.
	Logger *slog.Logger
}

// Result is what Run found and removed.
type Result struct {
	// DataDirs are the data directories whose mounts were removed.
	DataDirs []string
}

// Run stops minik's processes on this host and removes their mounts,
// links, chains, routes and cgroups (see the package doc). It is safe to
// run again: what is gone already is skipped. It must not run
// concurrently with itself.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	dirs := slices.Clone(cfg.DataDirs)
	if len(dirs) == 0 {
		dirs = []string{defaults.ServerDataDir}
	}
	nodes := slices.Clone(cfg.NodeNames)
	if len(nodes) == 0 {
		h, _ := os.Hostname()
		nodes = append(nodes, strings.ToLower(h))
	}
	found := stopProcesses(lg, cfg.Grace)
	dirs = normalize(append(dirs, found.dirs...))
	nodes = append(nodes, found.nodes...)

	errs := []error{unmountUnder(dirs, lg), deleteLinks(lg)}
	if err := servicenet.Cleanup(ctx); err != nil {
		errs = append(errs, fmt.Errorf("service rules and routes: %w", err))
	}
	errs = append(errs, removeCgroups(nodes, lg))
	return Result{DataDirs: dirs}, errors.Join(errs...)
}

// stopped is what the command lines of the stopped processes named.
type stopped struct {
	dirs  []string // data directories
	nodes []string // node names
}

// stopProcesses ends minik's servers and agents, then the shims with
// their pods, then the agents' containerd.
func stopProcesses(lg *slog.Logger, grace time.Duration) stopped {
	self, _ := os.Executable()
	me := os.Getpid()
	var found stopped
	var pids []string
	var servers []int
	for _, p := range listProcs("/proc") {
		if p.pid == me || !isMinik(p, self) {
			continue
		}
		servers = append(servers, p.pid)
		pids = append(pids, fmt.Sprint(p.pid))
		if d := flagValue(p.args[2:], "data-dir", "d"); d != "" {
			found.dirs = append(found.dirs, d)
		}
		if n := flagValue(p.args[2:], "node-name"); n != "" {
			found.nodes = append(found.nodes, n)
		}
	}
	if len(servers) > 0 {
		lg.Info("stopping servers and agents", "pids", strings.Join(pids, ","))
		terminate(servers, grace)
	}

	procs := listProcs("/proc")
	var shims []int
	for _, p := range procs {
		if !isShim(p) {
			continue
		}
		if addr := flagValue(p.args, "address"); addr != "" {
			found.dirs = append(found.dirs, filepath.Dir(filepath.Dir(addr)))
		}
		found.nodes = append(found.nodes, strings.TrimPrefix(flagValue(p.args, "namespace"), "minik-"))
		// The pods' processes first, so the shim does not restart or
		// report them; then the shim.
		below := descendants(procs, p.pid)
		for _, pid := range below {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(below, grace)
		shims = append(shims, p.pid)
	}
	if len(shims) > 0 {
		lg.Info("stopping containerd shims", "count", len(shims))
		terminate(shims, grace)
	}

	var daemons []int
	for _, p := range listProcs("/proc") {
		if d := agentContainerd(p); d != "" {
			daemons = append(daemons, p.pid)
			found.dirs = append(found.dirs, d)
		}
	}
	if len(daemons) > 0 {
		lg.Info("stopping containerd", "count", len(daemons))
		terminate(daemons, grace)
	}
	return found
}

// normalize makes dirs absolute and clean, without duplicates.
func normalize(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if abs, err := filepath.Abs(d); err == nil && !slices.Contains(out, abs) {
			out = append(out, abs)
		}
	}
	sort.Strings(out)
	return out
}

// unmountUnder detaches every mount at or below one of dirs, deepest
// first.
func unmountUnder(dirs []string, lg *slog.Logger) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				mounts = append(mounts, mp)
				break
			}
		}
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i], err))
			continue
		}
		lg.Debug("unmounted", "path", mounts[i])
	}
	if len(mounts) > 0 {
		lg.Info("unmounted", "count", len(mounts))
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deleteLinks deletes the minik-* links and the links enslaved to them.
func deleteLinks(lg *slog.Logger) error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, br := range links {
		if !strings.HasPrefix(br.Attrs().Name, "minik-") {
			continue
		}
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				if err := netlink.LinkDel(l); err != nil {
					errs = append(errs, fmt.Errorf("delete link %s: %w", l.Attrs().Name, err))
				}
			}
		}
		if err := netlink.LinkDel(br); err != nil {
			errs = append(errs, fmt.Errorf("delete link %s: %w", br.Attrs().Name, err))
			continue
		}
		lg.Info("deleted link", "name", br.Attrs().Name)
	}
	return errors.Join(errs...)
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// removeCgroups removes the cgroups of nodes (/minik-NODE and below,
// deepest first) in every hierarchy. A cgroup that still holds a process
// (of a process namespace Run cannot see) stays, with a warning.
func removeCgroups(nodes []string, lg *slog.Logger) error {
	roots := []string{cgroupRoot}
	entries, _ := os.ReadDir(cgroupRoot)
	for _, e := range entries {
		if e.IsDir() {
			roots = append(roots, filepath.Join(cgroupRoot, e.Name()))
		}
	}
	var errs []error
	removed := 0
	for _, root := range roots {
		for _, node := range slices.Compact(slices.Sorted(slices.Values(nodes))) {
			top := filepath.Join(root, "minik-"+node)
			if node == "" || strings.ContainsRune(node, '/') {
				continue
			}
			var dirs []string
			filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, path)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				err := os.Remove(dirs[i])
				if errors.Is(err, syscall.EBUSY) {
					lg.Warn("cgroup still in use", "path", dirs[i])
					continue
				}
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
					continue
				}
				removed++
			}
		}
	}
	if removed > 0 {
		lg.Info("removed cgroups", "count", removed)
	}
	return errors.Join(errs...)
}
