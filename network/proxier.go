package network

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ProxierConfig configures a [Proxier].
type ProxierConfig struct {
	// Executor applies the rules. Required.
	Executor Executor
	// ClusterCIDR, when set, makes traffic to a cluster IP from outside it
	// (the node itself, other hosts) masqueraded, so replies return
	// through this node.
	ClusterCIDR netip.Prefix
	// PodCIDR, when set, is the node's pod CIDR: only backends in it get
	// a MINIK-SEP chain with the hairpin masquerade; others are DNATed to
	// from the service chain. Unset, every backend gets a chain.
	PodCIDR netip.Prefix
	// LocalhostNodePorts exposes NodePorts on 127.0.0.1 too. It sets
	// net.ipv4.conf.all.route_localnet=1 and adds the rule that drops
	// packets to 127.0.0.0/8 from elsewhere.
	LocalhostNodePorts bool
	// MaxRestoreLines bounds one iptables-restore input; larger changes
	// are applied in several transactions, each leaving consistent rules.
	// 0 means the executor's [RestoreLimiter] limit or else
	// [DefaultMaxRestoreLines]; a negative value means no bound.
	MaxRestoreLines int
	// Logger receives sync results; nil discards them.
	Logger *slog.Logger
}

// Proxier keeps the node's service rules in step with Services and
// Endpoints. Its methods are safe for concurrent use; syncs are serialized.
//
// The proxy owns one network namespace's MINIK-SERVICES, MINIK-SERVICES-NN
// (buckets of service addresses), MINIK-SVC-*,
// MINIK-SEP-*, MINIK-NODEPORTS, MINIK-MARK-MASQ, MINIK-POSTROUTING,
// MINIK-FORWARD and MINIK-FIREWALL chains; two proxiers must not share one.
type Proxier struct {
	exec     Executor
	opt      renderOptions
	maxLines int
	lg       *slog.Logger

	mu sync.Mutex // serializes Sync and Cleanup; guards the fields below
	// applied maps table → chain → hash of the chain's rules as last
	// written. A missing table is unknown and gets listed first; a zero
	// hash marks a chain found but not written by this Proxier.
	applied map[string]map[string]uint64
	hooked  bool               // jumps and sysctls are in place
	udp     map[string]svcPort // UDP service ports as last applied, by SVC chain
	// rendered holds every service port's rules as last rendered, by
	// svcPort.id.
	rendered map[string]*portRules
}

// NewProxier returns a Proxier. It changes nothing until the first Sync.
func NewProxier(cfg ProxierConfig) (*Proxier, error) {
	if cfg.Executor == nil {
		return nil, fmt.Errorf("proxier executor must be set: %w", ErrInvalidConfig)
	}
	if cfg.ClusterCIDR.IsValid() && !cfg.ClusterCIDR.Addr().Is4() {
		return nil, fmt.Errorf("proxier clusterCIDR %s must be IPv4: %w", cfg.ClusterCIDR, ErrInvalidConfig)
	}
	if cfg.PodCIDR.IsValid() && !cfg.PodCIDR.Addr().Is4() {
		return nil, fmt.Errorf("proxier podCIDR %s must be IPv4: %w", cfg.PodCIDR, ErrInvalidConfig)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRestoreLines == 0 {
		cfg.MaxRestoreLines = DefaultMaxRestoreLines
		if l, ok := cfg.Executor.(RestoreLimiter); ok {
			cfg.MaxRestoreLines = l.RestoreLineLimit()
		}
	}
	return &Proxier{
		exec:     cfg.Executor,
		maxLines: cfg.MaxRestoreLines,
		opt: renderOptions{clusterCIDR: cfg.ClusterCIDR.Masked(), podCIDR: cfg.PodCIDR.Masked(),
			localhostNodePorts: cfg.LocalhostNodePorts},
		lg:      lg.With("component", "proxier"),
		applied: map[string]map[string]uint64{},
	}, nil
}

// SetRemoteNodes gives the other nodes' addresses, taken by the next
// Sync: traffic from the node itself and, with ProxierConfig.PodCIDR
// set, from its pods to a NodePort at one of them is sent to a backend
// by this node, as if it were addressed to this node. Only IPv4
// addresses are used.
func (p *Proxier) SetRemoteNodes(ips []netip.Addr) {
	var v4 []netip.Addr
	for _, ip := range ips {
		if ip.Is4() {
			v4 = append(v4, ip)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	v4 = slices.Compact(v4)
	p.mu.Lock()
	p.opt.remoteNodes = v4
	p.mu.Unlock()
}

// Sync makes the rules match services and endpoints, the complete current
// state. Only chains whose rules changed are written; chains no longer
// needed are deleted. Invalid service ports are left out and reported in
// the returned error after the valid ones are applied. After a failed
// write the next Sync rewrites every chain of that table.
func (p *Proxier) Sync(ctx context.Context, services []Service, endpoints []Endpoints) error {
	start := time.Now()
	ports, invalid := joinPorts(services, endpoints)

	p.mu.Lock()
	defer p.mu.Unlock()
	want, rendered := render(ports, p.opt, p.rendered)
	p.rendered = rendered
	written := 0
	for _, table := range tables {
		n, err := p.syncTableLocked(ctx, table, want[table])
		if err != nil {
			return errors.Join(invalid, err)
		}
		written += n
	}
	if err := p.hookLocked(ctx); err != nil {
		return errors.Join(invalid, err)
	}
	p.deleteStaleFlowsLocked(ctx, ports)
	p.lg.Debug("rules synced", "servicePorts", len(ports), "chainsChanged", written, "took", time.Since(start))
	return invalid
}

// syncTableLocked writes the chains of table that differ from what was
// applied and deletes the owned ones no longer wanted. It returns the
// number of chains written or deleted.
// p.mu must be held.
func (p *Proxier) syncTableLocked(ctx context.Context, table string, chains []*chain) (int, error) {
	have, err := p.appliedLocked(ctx, table)
	if err != nil {
		return 0, err
	}
	next := make(map[string]uint64, len(chains))
	var writes []*chain
	for _, c := range chains {
		h := c.sum()
		next[c.name] = h
		if have[c.name] != h {
			writes = append(writes, c)
		}
	}
	deletes := staleChains(have, next)
	for _, in := range planRestores(writes, deletes, p.maxLines) {
		if err := p.exec.Restore(ctx, table, in); err != nil {
			// Something else may have changed the tables: list them
			// and check the jumps again next time.
			delete(p.applied, table)
			p.hooked = false
			return 0, err
		}
	}
	p.applied[table] = next
	return len(writes) + len(deletes), nil
}

// appliedLocked returns what table holds of the proxy's chains, listing the
// table when unknown.
// p.mu must be held.
func (p *Proxier) appliedLocked(ctx context.Context, table string) (map[string]uint64, error) {
	if have, ok := p.applied[table]; ok {
		return have, nil
	}
	names, err := p.exec.ListChains(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("list %s chains: %w", table, err)
	}
	have := map[string]uint64{}
	for _, n := range names {
		if ownedChain(n) {
			have[n] = 0
		}
	}
	return have, nil
}

// staleChains returns the chains in have but not in next, sorted.
func staleChains(have, next map[string]uint64) []string {
	var out []string
	for name := range have {
		if _, ok := next[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// deleteStaleFlowsLocked deletes conntrack entries of UDP traffic to
// backends that are gone, if the executor can. Failures are logged: the
// rules are right, and the entries time out eventually.
// p.mu must be held.
func (p *Proxier) deleteStaleFlowsLocked(ctx context.Context, ports []svcPort) {
	flows, next := staleFlows(p.udp, ports)
	p.udp = next
	cc, ok := p.exec.(ConntrackCleaner)
	if !ok || len(flows) == 0 {
		return
	}
	if err := cc.DeleteStaleFlows(ctx, flows); err != nil {
		p.lg.Warn("stale UDP flows not deleted", "flows", len(flows), "err", err)
	}
}

// hookLocked installs the jumps from built-in chains and the sysctls, once.
// p.mu must be held.
func (p *Proxier) hookLocked(ctx context.Context) error {
	if p.hooked {
		return nil
	}
	if p.opt.localhostNodePorts {
		if err := p.exec.SetSysctl(ctx, "net.ipv4.conf.all.route_localnet", "1"); err != nil {
			return fmt.Errorf("enable route_localnet: %w", err)
		}
	}
	for _, j := range jumps(p.opt) {
		if err := p.exec.EnsureRule(ctx, j.table, j.chain, j.rule...); err != nil {
			return fmt.Errorf("jump from %s %s: %w", j.table, j.chain, err)
		}
	}
	p.hooked = true
	return nil
}

// Cleanup removes every chain the proxy owns and the jumps to them, whether
// this Proxier or an earlier one wrote them. A later Sync starts afresh.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	all := renderOptions{localhostNodePorts: true}
	for _, j := range jumps(all) {
		if err := p.exec.DeleteRule(ctx, j.table, j.chain, j.rule...); err != nil {
			errs = append(errs, fmt.Errorf("jump from %s %s: %w", j.table, j.chain, err))
		}
	}
	p.hooked = false
	for _, table := range tables {
		delete(p.applied, table)
		if _, err := p.syncTableLocked(ctx, table, nil); err != nil {
			errs = append(errs, err)
		}
		delete(p.applied, table)
	}
	return errors.Join(errs...)
}

// hashRules hashes a chain's rules; never 0, which marks an unknown chain.
func hashRules(rules []string) uint64 {
	h := fnv.New64a()
	for _, r := range rules {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return h.Sum64() | 1
}
