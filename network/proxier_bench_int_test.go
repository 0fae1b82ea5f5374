//go:build integration

package network_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/network/networktest"
)

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

// BenchmarkProxierSync measures the time from a change to its rules being
// applied, in a fresh network namespace per case:
//
//   - first: the first Sync into empty tables;
//   - full: a restarted Proxier rewriting every chain;
//   - endpoint: one backend of one service replaced;
//   - service: one service added (rewrites MINIK-SERVICES too).
//
// Run with -benchtime=1x for the large cases. MINIK_BENCH_MAX_RESTORE_LINES
// overrides ProxierConfig.MaxRestoreLines.
func BenchmarkProxierSync(b *testing.B) {
	networktest.RequireIntegration(b)
	for _, backend := range backends(b) {
		for _, n := range []int{1000, 5000} {
			b.Run(fmt.Sprintf("%s/services=%d", backend, n), func(b *testing.B) { benchSync(b, backend, n) })
		}
	}
}

func benchSync(b *testing.B, backend string, n int) {
	_, nsPath := networktest.NetNS(b)
	svcs, eps := benchState(n)
	ctx := context.Background()
	p := newIntProxier(b, backend, nsPath)
	start := time.Now()
	if err := p.Sync(ctx, svcs, eps); err != nil {
		b.Fatalf("first Sync: %v", err)
	}
	b.Logf("first sync of %d services x 3 endpoints: %v", n, time.Since(start))

	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			restarted := newIntProxier(b, backend, nsPath)
			if err := restarted.Sync(ctx, svcs, eps); err != nil {
				b.Fatalf("Sync: %v", err)
			}
		}
	})
	b.Run("endpoint", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			eps[0].Ports["http"][0] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 41, byte(i >> 8), byte(i)}), 8080)
			if err := p.Sync(ctx, svcs, eps); err != nil {
				b.Fatalf("Sync: %v", err)
			}
		}
	})
	b.Run("service", func(b *testing.B) {
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
	if err := p.Cleanup(ctx); err != nil {
		b.Errorf("Cleanup: %v", err)
	}
}
