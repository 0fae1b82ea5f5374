//go:build integration

package network_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/network/networktest"
)

// twoNodes makes namespaces A and B joined by a veth (10.99.0.1 in A,
// 10.99.0.2 in B), B owning the pod range 10.42.212.0/24 on lo
// with a server on 10.42.212.1:8080. It returns the namespaces' names and
// paths.
func twoNodes(t *testing.T) (aName, aPath, bName, bPath string) {
	t.Helper()
	aName, aPath = networktest.NetNS(t)
	bName, bPath = networktest.NetNS(t)
	run := networktest.Run
	run(t, "ip", "-n", aName, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", bName)
	run(t, "ip", "-n", aName, "addr", "add", "10.99.0.1/24", "dev", "eth0")
	run(t, "ip", "-n", bName, "addr", "add", "10.99.0.2/24", "dev", "eth0")
	run(t, "ip", "-n", aName, "link", "set", "eth0", "up")
	run(t, "ip", "-n", bName, "link", "set", "eth0", "up")
	run(t, "ip", "-n", bName, "addr", "add", "10.42.212.1/24", "dev", "lo")
	networktest.Serve(t, bPath, "10.42.212.1:8080", "node-b-pod")
	return aName, aPath, bName, bPath
}

func TestIntegrationSyncRoutes(t *testing.T) {
	networktest.RequireIntegration(t)
	aName, aPath, _, _ := twoNodes(t)
	// A route some other tool owns, in the same table.
	networktest.Run(t, "ip", "-n", aName, "route", "add", "10.42.213.0/24", "via", "10.99.0.2", "proto", "static")

	r, err := network.NewRouter(network.RouterConfig{NetNSPath: aPath})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	podAddr := "10.42.212.1:8080"

	if got, err := networktest.Greet(aPath, podAddr, time.Second); err == nil {
		t.Fatalf("node B's pod answered %q before any route existed", got)
	}
	want := []network.Route{{PodCIDR: netip.MustParsePrefix("10.42.212.0/24"), NodeIP: netip.MustParseAddr("10.99.0.2")}}
	for i := range 2 { // the second sync changes nothing
		if err := r.SyncRoutes(ctx, want); err != nil {
			t.Fatalf("SyncRoutes #%d: %v", i+1, err)
		}
	}
	checkRoutes(t, r, want)
	if !strings.Contains(networktest.Run(t, "ip", "-n", aName, "route", "show", "proto", "211"), "10.42.212.0/24 via 10.99.0.2") {
		t.Errorf("ip route shows no proto 211 route to 10.42.212.0/24")
	}
	networktest.EventuallyGreet(t, aPath, podAddr, "node-b-pod", 10*time.Second)

	moved := []network.Route{{PodCIDR: netip.MustParsePrefix("10.42.212.0/24"), NodeIP: netip.MustParseAddr("10.99.0.3")}}
	if err := r.SyncRoutes(ctx, moved); err != nil {
		t.Fatalf("SyncRoutes to a new node IP: %v", err)
	}
	checkRoutes(t, r, moved)

	if err := r.SyncRoutes(ctx, nil); err != nil {
		t.Fatalf("SyncRoutes(nil): %v", err)
	}
	checkRoutes(t, r, []network.Route{})
	if got, err := networktest.Greet(aPath, podAddr, time.Second); err == nil {
		t.Errorf("node B's pod answered %q after its route was removed", got)
	}
	if out := networktest.Run(t, "ip", "-n", aName, "route", "show", "10.42.213.0/24"); !strings.Contains(out, "proto static") {
		t.Errorf("route owned by another protocol was removed; ip route shows %q", out)
	}
}

func TestIntegrationSyncRoutesInvalid(t *testing.T) {
	networktest.RequireIntegration(t)
	_, aPath := networktest.NetNS(t)
	r, err := network.NewRouter(network.RouterConfig{NetNSPath: aPath})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	defer r.Close()
	ctx := context.Background()
	bad := []network.Route{
		{PodCIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("10.99.0.2")},
		{PodCIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("10.99.0.3")},
	}
	if err := r.SyncRoutes(ctx, bad); err == nil {
		t.Errorf("SyncRoutes with one podCIDR on two nodes succeeded")
	}
	// A node IP that is not on an attached network cannot be a next hop.
	offLink := []network.Route{{PodCIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("10.98.0.2")}}
	if err := r.SyncRoutes(ctx, offLink); err == nil {
		t.Errorf("SyncRoutes via an unreachable node IP succeeded")
	}
}

func checkRoutes(t *testing.T, r *network.Router, want []network.Route) {
	t.Helper()
	got, err := r.Routes(context.Background())
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Routes mismatch (-want +got):\n%s", diff)
	}
}
