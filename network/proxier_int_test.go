//go:build integration

package network_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/network/networktest"
)

// backends lists the iptables flavours on this machine.
func backends(t testing.TB) []string {
	out := []string{"nft"}
	if _, err := exec.LookPath("iptables-legacy-restore"); err == nil {
		out = append(out, "legacy")
	}
	return out
}

// nodeWithPod makes a node namespace N and a pod namespace P joined by a
// veth (N 10.42.221.1, P 10.42.221.2, P's default route via N), with a
// server in P on :8080 greeting "pod". It returns both namespaces' paths.
func nodeWithPod(t *testing.T) (nodeName, nodePath, podPath string) {
	t.Helper()
	nodeName, nodePath = networktest.NetNS(t)
	podName, podPath := networktest.NetNS(t)
	run := networktest.Run
	run(t, "ip", "-n", nodeName, "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", podName)
	run(t, "ip", "-n", nodeName, "addr", "add", "10.42.221.1/24", "dev", "veth0")
	run(t, "ip", "-n", podName, "addr", "add", "10.42.221.2/24", "dev", "eth0")
	run(t, "ip", "-n", nodeName, "link", "set", "veth0", "up")
	run(t, "ip", "-n", podName, "link", "set", "eth0", "up")
	run(t, "ip", "-n", podName, "route", "add", "default", "via", "10.42.221.1")
	// Service IPs need a route for locally made connections to reach the
	// nat OUTPUT hook; any will do, DNAT re-routes.
	run(t, "ip", "-n", nodeName, "route", "add", "default", "dev", "veth0")
	run(t, "ip", "netns", "exec", nodeName, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	networktest.Serve(t, podPath, ":8080", "pod")
	return nodeName, nodePath, podPath
}

func newIntProxier(t testing.TB, backend, nsPath string) *network.Proxier {
	t.Helper()
	x, err := network.NewIPTables(network.IPTablesConfig{Legacy: backend == "legacy", NetNSPath: nsPath})
	if err != nil {
		t.Fatalf("NewIPTables: %v", err)
	}
	maxLines, _ := strconv.Atoi(os.Getenv("MINIK_BENCH_MAX_RESTORE_LINES"))
	p, err := network.NewProxier(network.ProxierConfig{
		Executor:           x,
		MaxRestoreLines:    maxLines,
		ClusterCIDR:        netip.MustParsePrefix("10.42.0.0/16"),
		LocalhostNodePorts: true,
	})
	if err != nil {
		t.Fatalf("NewProxier: %v", err)
	}
	return p
}

func TestIntegrationProxierDNAT(t *testing.T) {
	networktest.RequireIntegration(t)
	for _, backend := range backends(t) {
		t.Run(backend, func(t *testing.T) { testProxierDNAT(t, backend) })
	}
}

func testProxierDNAT(t *testing.T, backend string) {
	nodeName, nodePath, podPath := nodeWithPod(t)
	p := newIntProxier(t, backend, nodePath)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svcs := []network.Service{
		{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.43.0.10"),
			Ports: []network.ServicePort{{Name: "http", Port: 80, NodePort: 30080}}},
		{Namespace: "default", Name: "empty", ClusterIP: netip.MustParseAddr("10.43.0.20"),
			Ports: []network.ServicePort{{Name: "http", Port: 80}}},
	}
	eps := []network.Endpoints{{Namespace: "default", Name: "web",
		Ports: map[string][]netip.AddrPort{"http": {ap("10.42.221.2:8080")}}}}
	if err := p.Sync(ctx, svcs, eps); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})

	t.Run("cluster IP from node", func(t *testing.T) {
		networktest.EventuallyGreet(t, nodePath, "10.43.0.10:80", "pod", greetTimeout)
	})
	t.Run("NodePort on localhost", func(t *testing.T) {
		networktest.EventuallyGreet(t, nodePath, "127.0.0.1:30080", "pod", greetTimeout)
	})
	t.Run("hairpin", func(t *testing.T) {
		networktest.EventuallyGreet(t, podPath, "10.43.0.10:80", "pod", greetTimeout)
	})
	t.Run("no endpoints rejects", func(t *testing.T) {
		_, err := networktest.Greet(nodePath, "10.43.0.20:80", 5*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Greet(service without endpoints) err = %v, want ECONNREFUSED", err)
		}
	})
	t.Run("endpoint change", func(t *testing.T) {
		eps[0].Ports["http"] = []netip.AddrPort{ap("10.42.221.2:8081")}
		networktest.Serve(t, podPath, ":8081", "pod-8081")
		if err := p.Sync(ctx, svcs, eps); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		networktest.EventuallyGreet(t, nodePath, "10.43.0.10:80", "pod-8081", greetTimeout)
	})
	t.Run("cleanup", func(t *testing.T) {
		if err := p.Cleanup(ctx); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		save := saveCmd(backend)
		if out := networktest.Run(t, "ip", "netns", "exec", nodeName, save); strings.Contains(out, "MINIK-") {
			t.Errorf("%s after Cleanup still shows minik rules:\n%s", save, out)
		}
		if got, err := networktest.Greet(nodePath, "10.43.0.10:80", time.Second); err == nil {
			t.Errorf("cluster IP answered %q after Cleanup", got)
		}
	})
}

func saveCmd(backend string) string {
	if backend == "legacy" {
		return "iptables-legacy-save"
	}
	return "iptables-save"
}

func TestIntegrationProxierUDPBackendChange(t *testing.T) {
	networktest.RequireIntegration(t)
	_, nodePath, podPath := nodeWithPod(t)
	networktest.ServeUDP(t, podPath, ":5353", "backend-a")
	networktest.ServeUDP(t, podPath, ":5354", "backend-b")
	p := newIntProxier(t, "nft", nodePath)
	t.Cleanup(func() {
		if err := p.Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svcs := []network.Service{{Namespace: "kube-system", Name: "dns", ClusterIP: netip.MustParseAddr("10.43.0.53"),
		Ports: []network.ServicePort{{Name: "dns", Protocol: "udp", Port: 53}}}}
	eps := []network.Endpoints{{Namespace: "kube-system", Name: "dns",
		Ports: map[string][]netip.AddrPort{"dns": {ap("10.42.221.2:5353")}}}}
	if err := p.Sync(ctx, svcs, eps); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	c := networktest.DialUDP(t, nodePath, "10.43.0.53:53")
	if got, err := networktest.AskUDP(c, 5*time.Second); err != nil || got != "backend-a" {
		t.Fatalf("AskUDP = %q, %v; want backend-a", got, err)
	}
	// The same client socket keeps its conntrack entry alive; only its
	// deletion sends the next datagram to the new backend.
	eps[0].Ports["dns"] = []netip.AddrPort{ap("10.42.221.2:5354")}
	if err := p.Sync(ctx, svcs, eps); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if got, err := networktest.AskUDP(c, 5*time.Second); err != nil || got != "backend-b" {
		t.Errorf("AskUDP after the backend changed = %q, %v; want backend-b", got, err)
	}
}

// TestIntegrationProxierAffinityExternalIP runs a service with two backends
// (one server on two ports) on a node whose pod CIDR holds the pod: with
// ClientIP affinity 30 connections from the node reach one backend, without
// it both; the node's own address as an external IP serves the port; the
// pod reaches itself through the service (hairpin, with its MINIK-SEP
// chain).
func TestIntegrationProxierAffinityExternalIP(t *testing.T) {
	networktest.RequireIntegration(t)
	for _, backend := range backends(t) {
		t.Run(backend, func(t *testing.T) { testProxierAffinity(t, backend) })
	}
}

func testProxierAffinity(t *testing.T, backend string) {
	_, nodePath, podPath := nodeWithPod(t)
	networktest.Serve(t, podPath, ":8081", "pod-8081")
	x, err := network.NewIPTables(network.IPTablesConfig{Legacy: backend == "legacy", NetNSPath: nodePath})
	if err != nil {
		t.Fatal(err)
	}
	p, err := network.NewProxier(network.ProxierConfig{Executor: x, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		PodCIDR: netip.MustParsePrefix("10.42.221.0/24"), LocalhostNodePorts: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	two := []netip.AddrPort{ap("10.42.221.2:8080"), ap("10.42.221.2:8081")}
	svcs := []network.Service{
		{Namespace: "default", Name: "sticky", ClusterIP: netip.MustParseAddr("10.43.0.11"), AffinityTimeout: time.Hour,
			Ports: []network.ServicePort{{Name: "http", Port: 80}}},
		{Namespace: "default", Name: "spread", ClusterIP: netip.MustParseAddr("10.43.0.12"),
			ExternalIPs: []netip.Addr{netip.MustParseAddr("10.42.221.1")},
			Ports:       []network.ServicePort{{Name: "http", Port: 81}}},
	}
	eps := []network.Endpoints{
		{Namespace: "default", Name: "sticky", Ports: map[string][]netip.AddrPort{"http": two}},
		{Namespace: "default", Name: "spread", Ports: map[string][]netip.AddrPort{"http": two}},
	}
	if err := p.Sync(ctx, svcs, eps); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	answers := func(ns, addr string) map[string]int {
		got := map[string]int{}
		for range 30 {
			g, err := networktest.Greet(ns, addr, 5*time.Second)
			if err != nil {
				t.Fatalf("Greet(%s): %v", addr, err)
			}
			got[g]++
		}
		return got
	}
	if got := answers(nodePath, "10.43.0.11:80"); len(got) != 1 {
		t.Errorf("30 connections to the service with affinity reached %v, want one backend", got)
	}
	if got := answers(nodePath, "10.43.0.12:81"); len(got) != 2 {
		t.Errorf("30 connections to the service without affinity reached %v, want both backends", got)
	}
	if got := answers(nodePath, "10.42.221.1:81"); len(got) != 2 {
		t.Errorf("30 connections to the external IP reached %v, want both backends", got)
	}
	if got := answers(podPath, "10.43.0.11:80"); len(got) != 1 {
		t.Errorf("30 connections from the pod to itself through the service with affinity reached %v, want one backend", got)
	}
}
