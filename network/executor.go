package network

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/minik-dev/minik/network/internal/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Executor applies packet filter changes for a [Proxier]. [IPTables] is the
// real one; networktest.Recorder records calls in unit tests. Methods must
// be safe to call from one goroutine at a time; the Proxier never calls
// them concurrently.
type Executor interface {
	// Restore applies rules, the lines of an iptables-restore input for
	// table without the "*table" header and the COMMIT trailer, as one
	// transaction. Chains the rules do not declare are left alone.
	Restore(ctx context.Context, table string, rules []byte) error
	// EnsureRule inserts rule at the top of chain unless it is there.
	EnsureRule(ctx context.Context, table, chain string, rule ...string) error
	// DeleteRule deletes rule from chain; a missing rule or target is not
	// an error.
	DeleteRule(ctx context.Context, table, chain string, rule ...string) error
	// ListChains returns the names of table's chains, built-in ones
	// included. The caller owns the slice.
	ListChains(ctx context.Context, table string) ([]string, error)
	// SetSysctl writes value to the sysctl key (dotted, as in sysctl(8)).
	SetSysctl(ctx context.Context, key, value string) error
}

// IPTablesConfig configures an [IPTables] executor.
type IPTablesConfig struct {
	// Legacy selects the iptables-legacy tools instead of the default
	// iptables (nf_tables on Debian 12).
	Legacy bool
	// NetNSPath runs every command in that network namespace; empty means
	// the caller's.
	NetNSPath string
}

// RestoreLimiter is implemented by executors that prefer iptables-restore
// inputs of at most RestoreLineLimit lines; a [Proxier] uses it when
// [ProxierConfig.MaxRestoreLines] is 0.
type RestoreLimiter interface {
	RestoreLineLimit() int
}

// IPTables applies rules with iptables-restore --noflush and edits single
// rules with go-iptables.
type IPTables struct {
	restore string
	ipt     *iptables.IPTables
	nsPath  string
	legacy  bool
}

var _ RestoreLimiter = (*IPTables)(nil)

// RestoreLineLimit returns the input size that applied fastest here:
// nf_tables restores slow down superlinearly with input size, while each
// legacy restore rewrites the whole table, so fewer, larger ones win.
func (x *IPTables) RestoreLineLimit() int {
	if x.legacy {
		return 10000
	}
	return DefaultMaxRestoreLines
}

var _ Executor = (*IPTables)(nil)

// NewIPTables finds the iptables tools.
func NewIPTables(cfg IPTablesConfig) (*IPTables, error) {
	iptBin, restore := "iptables", "iptables-restore"
	if cfg.Legacy {
		iptBin, restore = "iptables-legacy", "iptables-legacy-restore"
	}
	restorePath, err := exec.LookPath(restore)
	if err != nil {
		return nil, err
	}
	iptPath, err := exec.LookPath(iptBin)
	if err != nil {
		return nil, err
	}
	ipt, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Timeout(5), iptables.Path(iptPath))
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	return &IPTables{restore: restorePath, ipt: ipt, nsPath: cfg.NetNSPath, legacy: cfg.Legacy}, nil
}

// Restore runs iptables-restore --noflush with the rules for table.
func (x *IPTables) Restore(ctx context.Context, table string, rules []byte) error {
	in := make([]byte, 0, len(rules)+len(table)+16)
	in = append(append(append(in, '*'), table...), '\n')
	in = append(append(in, rules...), "COMMIT\n"...)
	return netns.Do(x.nsPath, func() error {
		cmd := exec.CommandContext(ctx, x.restore, "--noflush", "--wait", "5")
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s table %q: %w: %s", filepath.Base(x.restore), table, err, bytes.TrimSpace(out))
		}
		return nil
	})
}

// EnsureRule inserts rule at position 1 of chain unless it exists.
func (x *IPTables) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	return netns.Do(x.nsPath, func() error {
		ok, err := x.ipt.Exists(table, chain, rule...)
		if err != nil || ok {
			return err
		}
		return x.ipt.Insert(table, chain, 1, rule...)
	})
}

// DeleteRule deletes rule from chain if it exists.
func (x *IPTables) DeleteRule(ctx context.Context, table, chain string, rule ...string) error {
	return netns.Do(x.nsPath, func() error {
		// Checking a rule that jumps to a missing chain fails; without the
		// chain there is no such rule.
		if i := slices.Index(rule, "-j"); i >= 0 && i+1 < len(rule) {
			if ok, err := x.ipt.ChainExists(table, rule[i+1]); err != nil || !ok {
				return err
			}
		}
		return x.ipt.DeleteIfExists(table, chain, rule...)
	})
}

// ListChains lists table's chains.
func (x *IPTables) ListChains(ctx context.Context, table string) ([]string, error) {
	var names []string
	err := netns.Do(x.nsPath, func() (err error) {
		names, err = x.ipt.ListChains(table)
		return err
	})
	return names, err
}

// SetSysctl writes /proc/sys/<key with dots as slashes>, in the executor's
// network namespace.
func (x *IPTables) SetSysctl(ctx context.Context, key, value string) error {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	return netns.Do(x.nsPath, func() error { return os.WriteFile(path, []byte(value), 0o644) })
}

var _ ConntrackCleaner = (*IPTables)(nil)

// DeleteStaleFlows deletes the UDP conntrack entries of flows in the
// executor's network namespace.
func (x *IPTables) DeleteStaleFlows(ctx context.Context, flows []StaleFlow) error {
	filters := make([]netlink.CustomConntrackFilter, 0, len(flows))
	for _, f := range flows {
		cf := &netlink.ConntrackFilter{}
		_ = cf.AddProtocol(unix.IPPROTO_UDP)
		if f.Service.Addr().IsValid() {
			_ = cf.AddIP(netlink.ConntrackOrigDstIP, f.Service.Addr().AsSlice())
		}
		_ = cf.AddPort(netlink.ConntrackOrigDstPort, f.Service.Port())
		_ = cf.AddIP(netlink.ConntrackReplySrcIP, f.Backend.AsSlice())
		filters = append(filters, cf)
	}
	return netns.Do(x.nsPath, func() error {
		if _, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...); err != nil {
			return fmt.Errorf("delete conntrack entries: %w", err)
		}
		return nil
	})
}
