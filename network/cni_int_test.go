//go:build integration

package network_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/network/networktest"
)

const greetTimeout = 10 * time.Second

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// newCNI returns a CNI on a fresh bridge whose pods, chains and bridge are
// removed when t ends, and checks that nothing it made is left behind.
func newCNI(t *testing.T, podCIDR string) *network.CNI {
	t.Helper()
	networktest.RequireIntegration(t)
	c, err := network.NewCNI(network.Config{
		PodCIDR:    netip.MustParsePrefix(podCIDR),
		BridgeName: networktest.Name("mkt"),
		DataDir:    t.TempDir(),
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("NewCNI: %v", err)
	}
	bridge := c.Config().BridgeName
	t.Cleanup(func() {
		if err := c.Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		if err := exec.Command("ip", "link", "show", bridge).Run(); err == nil {
			t.Errorf("bridge %s still exists after Cleanup", bridge)
		}
		if chains := natChains(t); strings.Contains(chains, bridge) {
			t.Errorf("nat chains for %s left after Cleanup:\n%s", bridge, chains)
		}
	})
	return c
}

// pod is a network namespace attached through a CNI.
type pod struct {
	id, ns, path string
	ip           netip.Addr
}

// addPod creates a namespace and sets it up; the pod is torn down when t
// ends (before the CNI's cleanup, as cleanups run last-in first-out).
func addPod(t *testing.T, c *network.CNI, ports ...network.PortMapping) pod {
	t.Helper()
	p := pod{id: networktest.Name("pod-")}
	p.ns, p.path = networktest.NetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ip, err := c.Setup(ctx, p.id, p.path, ports)
	if err != nil {
		t.Fatalf("Setup(%s): %v", p.id, err)
	}
	p.ip = ip
	t.Cleanup(func() {
		if err := c.Teardown(context.Background(), p.id, p.path, ports); err != nil {
			t.Errorf("Teardown(%s): %v", p.id, err)
		}
		if chains := natChains(t); strings.Contains(chains, p.id) {
			t.Errorf("nat rules for %s left after Teardown:\n%s", p.id, chains)
		}
	})
	return p
}

// natChains returns iptables-save output for the nat table.
func natChains(t *testing.T) string {
	t.Helper()
	return networktest.Run(t, "iptables-save", "-t", "nat")
}

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func TestIntegrationCNIPodReachableFromNode(t *testing.T) {
	c := newCNI(t, "10.42.201.0/24")
	if err := c.Status(context.Background()); err != nil {
		t.Fatalf("Status: %v", err)
	}
	hostPort := freePort(t)
	p := addPod(t, c, network.PortMapping{HostPort: hostPort, ContainerPort: 8080})
	if !c.Config().PodCIDR.Contains(p.ip) || p.ip == netip.MustParseAddr("10.42.201.1") {
		t.Fatalf("Setup IP = %v, want a pod address in %v", p.ip, c.Config().PodCIDR)
	}
	if got, err := c.PodIP(context.Background(), p.id); err != nil || got != p.ip {
		t.Errorf("PodIP = %v, %v; want %v", got, err, p.ip)
	}
	networktest.Serve(t, p.path, ":8080", "pod-a")
	bridge := c.Config().BridgeName
	nat := natChains(t)
	for _, want := range []string{
		"-A POSTROUTING -s 10.42.201.0/24 -m comment --comment \"minik: masquerade pods on " + bridge,
		"-A MINIK-MASQ-" + bridge + " -d 10.42.0.0/16 -j RETURN",
		"-A MINIK-MASQ-" + bridge + " -j MASQUERADE",
	} {
		if !strings.Contains(nat, want) {
			t.Errorf("nat table lacks %q:\n%s", want, nat)
		}
	}

	t.Run("ping", func(t *testing.T) {
		if err := networktest.Ping("", p.ip, 5*time.Second); err != nil {
			t.Errorf("Ping(%v) from the node: %v", p.ip, err)
		}
		unused := netip.MustParseAddr("10.42.201.250")
		if err := networktest.Ping("", unused, time.Second); err == nil {
			t.Errorf("Ping(%v), an address no pod has, succeeded", unused)
		}
	})
	t.Run("pod IP", func(t *testing.T) {
		networktest.EventuallyGreet(t, "", netip.AddrPortFrom(p.ip, 8080).String(), "pod-a", greetTimeout)
	})
	t.Run("pod loopback", func(t *testing.T) {
		networktest.Serve(t, p.path, "127.0.0.1:8081", "pod-a-lo")
		networktest.EventuallyGreet(t, p.path, "127.0.0.1:8081", "pod-a-lo", greetTimeout)
	})
	t.Run("setup again", func(t *testing.T) {
		ip, err := c.Setup(context.Background(), p.id, p.path, nil)
		if err != nil || ip != p.ip {
			t.Fatalf("second Setup = %v, %v; want %v", ip, err, p.ip)
		}
		networktest.EventuallyGreet(t, "", netip.AddrPortFrom(p.ip, 8080).String(), "pod-a", greetTimeout)
	})
	t.Run("hostPort", func(t *testing.T) {
		networktest.EventuallyGreet(t, "", fmt.Sprintf("127.0.0.1:%d", hostPort), "pod-a", greetTimeout)
	})
	t.Run("hairpin through own hostPort", func(t *testing.T) {
		gw := netip.AddrPortFrom(c.Config().PodCIDR.Addr().Next(), hostPort)
		networktest.EventuallyGreet(t, p.path, gw.String(), "pod-a", greetTimeout)
	})
	t.Run("teardown", func(t *testing.T) {
		ctx := context.Background()
		for i := range 2 { // idempotent
			if err := c.Teardown(ctx, p.id, p.path, nil); err != nil {
				t.Fatalf("Teardown #%d: %v", i+1, err)
			}
		}
		if _, err := c.PodIP(ctx, p.id); !errors.Is(err, network.ErrNotFound) {
			t.Errorf("PodIP after Teardown: err = %v, want ErrNotFound", err)
		}
		if got, err := networktest.Greet("", fmt.Sprintf("127.0.0.1:%d", hostPort), time.Second); err == nil {
			t.Errorf("hostPort still answers %q after Teardown", got)
		}
	})
}

func TestIntegrationCNITeardownReleasesIP(t *testing.T) {
	// A /30 has one pod address: the second pod only fits once the first
	// pod's lease is released.
	c := newCNI(t, "10.42.202.0/30")
	a := addPod(t, c)
	if want := netip.MustParseAddr("10.42.202.2"); a.ip != want {
		t.Fatalf("first pod IP = %v, want %v", a.ip, want)
	}
	_, bPath := networktest.NetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ip, err := c.Setup(ctx, "pod-b", bPath, nil); err == nil {
		t.Fatalf("Setup in a full range = %v, want error", ip)
	}
	want := []network.Attachment{{PodID: a.id, NetNSPath: a.path, IP: a.ip}}
	if got, err := c.Attachments(ctx); err != nil || !cmp.Equal(got, want, cmpAddr) {
		t.Errorf("Attachments = %+v, %v; want %+v", got, err, want)
	}
	networktest.Run(t, "ip", "netns", "del", a.ns) // the sandbox died first
	if err := c.Teardown(ctx, a.id, a.path, nil); err != nil {
		t.Fatalf("Teardown with the netns gone: %v", err)
	}
	if got, err := c.Attachments(ctx); err != nil || len(got) != 0 {
		t.Errorf("Attachments after Teardown = %+v, %v; want none", got, err)
	}
	ip, err := c.Setup(ctx, "pod-b", bPath, nil)
	if err != nil {
		t.Fatalf("Setup after release: %v", err)
	}
	defer c.Teardown(context.Background(), "pod-b", bPath, nil)
	if ip != a.ip {
		t.Errorf("Setup after release = %v, want the released %v", ip, a.ip)
	}
}

func TestIntegrationCNITwoNodesOnOneHost(t *testing.T) {
	c1 := newCNI(t, "10.42.203.0/24")
	c2 := newCNI(t, "10.42.204.0/24")
	p1, p2 := addPod(t, c1), addPod(t, c2)
	networktest.Serve(t, p1.path, ":8080", "pod-1")
	networktest.Serve(t, p2.path, ":8080", "pod-2")
	if !c1.Config().PodCIDR.Contains(p1.ip) || !c2.Config().PodCIDR.Contains(p2.ip) {
		t.Fatalf("pod IPs %v, %v not in their podCIDRs", p1.ip, p2.ip)
	}
	addr1 := netip.AddrPortFrom(p1.ip, 8080).String()
	addr2 := netip.AddrPortFrom(p2.ip, 8080).String()
	networktest.EventuallyGreet(t, "", addr1, "pod-1", greetTimeout)
	networktest.EventuallyGreet(t, "", addr2, "pod-2", greetTimeout)
	// Pods on different bridges reach each other through the host.
	networktest.EventuallyGreet(t, p1.path, addr2, "pod-2", greetTimeout)

	ctx := context.Background()
	if err := c1.Teardown(ctx, p1.id, p1.path, nil); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if err := c1.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	networktest.EventuallyGreet(t, "", addr2, "pod-2", greetTimeout)
	if err := c2.Status(ctx); err != nil {
		t.Errorf("Status of the other CNI: %v", err)
	}
}

func TestIntegrationCNISetupInNewSandbox(t *testing.T) {
	c := newCNI(t, "10.42.205.0/24")
	old := addPod(t, c)
	_, newPath := networktest.NetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ip, err := c.Setup(ctx, old.id, newPath, nil)
	if err != nil {
		t.Fatalf("Setup in a new namespace: %v", err)
	}
	t.Cleanup(func() { c.Teardown(context.Background(), old.id, newPath, nil) })
	networktest.Serve(t, newPath, ":8080", "new-sandbox")
	networktest.EventuallyGreet(t, "", netip.AddrPortFrom(ip, 8080).String(), "new-sandbox", greetTimeout)
	want := []network.Attachment{{PodID: old.id, NetNSPath: newPath, IP: ip}}
	if got, err := c.Attachments(ctx); err != nil || !cmp.Equal(got, want, cmpAddr) {
		t.Errorf("Attachments = %+v, %v; want %+v", got, err, want)
	}
	if out := networktest.Run(t, "ip", "-n", old.ns, "link", "show"); strings.Contains(out, "eth0") {
		t.Errorf("old sandbox still has eth0:\n%s", out)
	}
}

func TestIntegrationCNIConcurrentSetup(t *testing.T) {
	c := newCNI(t, "10.42.206.0/24")
	const n = 8
	type result struct {
		id, path string
		ip       netip.Addr
		err      error
	}
	results := make([]result, n)
	for i := range results {
		results[i].id = networktest.Name("pod-")
		_, results[i].path = networktest.NetNS(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i].ip, results[i].err = c.Setup(ctx, results[i].id, results[i].path, nil) })
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for _, r := range results {
		t.Cleanup(func() { c.Teardown(context.Background(), r.id, r.path, nil) })
		if r.err != nil {
			t.Errorf("Setup(%s): %v", r.id, r.err)
			continue
		}
		if seen[r.ip] {
			t.Errorf("IP %v handed out twice", r.ip)
		}
		seen[r.ip] = true
		networktest.Serve(t, r.path, ":8080", r.id)
		networktest.EventuallyGreet(t, "", netip.AddrPortFrom(r.ip, 8080).String(), r.id, greetTimeout)
	}
}
