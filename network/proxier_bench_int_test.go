//go:build integration

package network_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/network/networktest"
)

// benchPodCIDR is the benchmark node's pod CIDR: 256 of the 15,000
// backends of 5,000 services are its own, as on one node of a cluster of
// 59 nodes with a /24 each.
var benchPodCIDR = netip.MustParsePrefix("10.42.0.0/24")

// benchState returns n services with three backends each.
func benchState(n int) ([]network.Service, []network.Endpoints) {
	svcs := make([]network.Service, n)
	eps := make([]network.Endpoints, n)
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		svcs[i] = network.Service{Namespace: "bench", Name: name,
			ClusterIP: netip.AddrFrom4([4]byte{10, 43, byte(i >> 8), byte(i)}),
			Ports:     []network.ServicePort{{Name: "http", Port: 80}}}
		var backends []netip.AddrPort
		for j := range 3 {
			k := i*3 + j
			backends = append(backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 42, byte(k >> 8), byte(k)}), 8080))
		}
		eps[i] = network.Endpoints{Namespace: "bench", Name: name,
			Ports: map[string][]netip.AddrPort{"http": backends}}
	}
	return svcs, eps
}

// timedExec measures the time spent in Restore, to split a sync into
// iptables-restore and the proxier's own work.
type timedExec struct {
	*network.IPTables
	mu       sync.Mutex
	restores int
	inRest   time.Duration
}

func (x *timedExec) Restore(ctx context.Context, table string, rules []byte) error {
	start := time.Now()
	err := x.IPTables.Restore(ctx, table, rules)
	x.mu.Lock()
	x.restores++
	x.inRest += time.Since(start)
	x.mu.Unlock()
	return err
}

func (x *timedExec) take() (int, time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, d := x.restores, x.inRest
	x.restores, x.inRest = 0, 0
	return n, d
}

func newBenchProxier(b *testing.B, backend, nsPath string, podCIDR netip.Prefix) (*network.Proxier, *timedExec) {
	b.Helper()
	ipt, err := network.NewIPTables(network.IPTablesConfig{Legacy: backend == "legacy", NetNSPath: nsPath})
	if err != nil {
		b.Fatalf("NewIPTables: %v", err)
	}
	x := &timedExec{IPTables: ipt}
	maxLines, _ := strconv.Atoi(os.Getenv("MINIK_BENCH_MAX_RESTORE_LINES"))
	if maxLines == 0 {
		maxLines = ipt.RestoreLineLimit()
	}
	p, err := network.NewProxier(network.ProxierConfig{
		Executor:           x,
		MaxRestoreLines:    maxLines,
		ClusterCIDR:        netip.MustParsePrefix("10.42.0.0/16"),
		PodCIDR:            podCIDR,
		LocalhostNodePorts: true,
	})
	if err != nil {
		b.Fatalf("NewProxier: %v", err)
	}
	return p, x
}

// benchRow is one line of BenchmarkProxierSync's table.
type benchRow struct {
	backend, layout string
	services        int
	first, full     time.Duration
	endpoint        stats // whole syncs
	endpointRestore stats // their iptables-restore part
	service         time.Duration
	emptyRestore    stats
}

// stats are the median and the minimum of some durations. On a machine
// shared with other work the minimum shows the cost, the median what a
// sync met.
type stats struct{ median, min time.Duration }

func statsOf(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return stats{median: ds[len(ds)/2], min: ds[0]}
}

func (s stats) String() string {
	return fmt.Sprintf("%.1f / %.1f ms", float64(s.median.Microseconds())/1000, float64(s.min.Microseconds())/1000)
}

// sampled is how many one-endpoint syncs and empty restores each case
// times, whatever b.N.
const sampled = 15

// BenchmarkProxierSync measures the time from a change to its rules being
// applied, in a fresh network namespace per case:
//
//   - first: the first Sync into empty tables;
//   - full: a restarted Proxier rewriting every chain (mean of b.N);
//   - endpoint: one backend of one service replaced (the one-service
//     incremental sync), and the part of it spent in iptables-restore
//     (median and minimum of 15);
//   - empty restore: iptables-restore --noflush of an empty nat input
//     against the same tables, the floor of any sync (15, each after
//     one of the endpoint syncs);
//   - service: one service added (rewrites MINIK-SERVICES too; mean of
//     b.N).
//
// Layout "podCIDR" is a node with pod CIDR 10.42.0.0/24 (256 of the
// backends local, the rest DNATed to from their service chains); layout
// "all-local" gives every backend its own chain, as without a pod CIDR.
// It prints a table of means at the end. Run with -benchtime=3x.
// MINIK_BENCH_MAX_RESTORE_LINES overrides ProxierConfig.MaxRestoreLines;
// MINIK_BENCH_LAYOUTS=podCIDR limits the layouts.
func BenchmarkProxierSync(b *testing.B) {
	networktest.RequireIntegration(b)
	var rows []benchRow
	layouts := []string{"podCIDR", "all-local"}
	if l := os.Getenv("MINIK_BENCH_LAYOUTS"); l != "" {
		layouts = strings.Split(l, ",")
	}
	for _, backend := range backends(b) {
		for _, layout := range layouts {
			for _, n := range []int{1000, 5000} {
				row := benchRow{backend: backend, layout: layout, services: n}
				if b.Run(fmt.Sprintf("%s/%s/services=%d", backend, layout, n), func(b *testing.B) { benchSync(b, &row) }) && row.first > 0 {
					rows = append(rows, row)
				}
			}
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "backend\tlayout\tservices\tfirst sync\tfull rewrite\tone endpoint (median / min)\tits restore\tempty restore\tone new service\t")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.backend, r.layout, r.services,
			ms(r.first), ms(r.full), r.endpoint, r.endpointRestore, r.emptyRestore, ms(r.service))
	}
	w.Flush()
}

// mean runs fn b.N times in a sub-benchmark and returns the mean time.
func mean(b *testing.B, name string, fn func(b *testing.B)) time.Duration {
	var d time.Duration
	b.Run(name, func(b *testing.B) {
		start := time.Now()
		fn(b)
		d = time.Since(start) / time.Duration(b.N)
	})
	return d
}

func benchSync(b *testing.B, row *benchRow) {
	_, nsPath := networktest.NetNS(b)
	svcs, eps := benchState(row.services)
	ctx := context.Background()
	podCIDR := benchPodCIDR
	if row.layout == "all-local" {
		podCIDR = netip.Prefix{}
	}
	p, x := newBenchProxier(b, row.backend, nsPath, podCIDR)
	start := time.Now()
	if err := p.Sync(ctx, svcs, eps); err != nil {
		b.Fatalf("first Sync: %v", err)
	}
	row.first = time.Since(start)
	defer func() {
		if err := p.Cleanup(ctx); err != nil {
			b.Errorf("Cleanup: %v", err)
		}
	}()

	row.full = mean(b, "full", func(b *testing.B) {
		for b.Loop() {
			restarted, _ := newBenchProxier(b, row.backend, nsPath, podCIDR)
			if err := restarted.Sync(ctx, svcs, eps); err != nil {
				b.Fatalf("Sync: %v", err)
			}
		}
	})
	// One backend of one service replaced, sampled times; then as many
	// empty restores against the same tables, interleaved so both meet
	// the same load.
	var syncs, restores, empties []time.Duration
	x.take()
	for i := range sampled {
		eps[0].Ports["http"][0] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 41, byte(i >> 8), byte(i)}), 8080)
		start := time.Now()
		if err := p.Sync(ctx, svcs, eps); err != nil {
			b.Fatalf("Sync: %v", err)
		}
		syncs = append(syncs, time.Since(start))
		_, d := x.take()
		restores = append(restores, d)
		start = time.Now()
		if err := x.IPTables.Restore(ctx, "nat", nil); err != nil {
			b.Fatalf("empty restore: %v", err)
		}
		empties = append(empties, time.Since(start))
	}
	row.endpoint, row.endpointRestore, row.emptyRestore = statsOf(syncs), statsOf(restores), statsOf(empties)
	row.service = mean(b, "service", func(b *testing.B) {
		base := len(svcs)
		for b.Loop() {
			i := len(svcs) - base
			svcs = append(svcs, network.Service{Namespace: "bench", Name: fmt.Sprintf("extra-%d", i),
				ClusterIP: netip.AddrFrom4([4]byte{10, 43, 200, byte(i)}),
				Ports:     []network.ServicePort{{Name: "http", Port: 80}}})
			eps = append(eps, network.Endpoints{Namespace: "bench", Name: fmt.Sprintf("extra-%d", i),
				Ports: map[string][]netip.AddrPort{"http": {netip.MustParseAddrPort("10.42.250.1:8080")}}})
			if err := p.Sync(ctx, svcs, eps); err != nil {
				b.Fatalf("Sync: %v", err)
			}
		}
	})
}
