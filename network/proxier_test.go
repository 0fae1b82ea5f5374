package network_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/network/networktest"
)

var _ network.Executor = (*networktest.Recorder)(nil)

var updateGolden = flag.Bool("update-proxier", false, "rewrite the proxier golden files in testdata")

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// state is a small cluster: a web service with a NodePort and three
// backends, a DNS service with TCP and UDP ports, and a service without
// backends.
func state() ([]network.Service, []network.Endpoints) {
	svcs := []network.Service{
		{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.43.0.10"),
			Ports: []network.ServicePort{{Name: "http", Port: 80, NodePort: 30080}}},
		{Namespace: "kube-system", Name: "dns", ClusterIP: netip.MustParseAddr("10.43.0.53"),
			Ports: []network.ServicePort{{Name: "dns", Protocol: "udp", Port: 53}, {Name: "dns-tcp", Port: 53}}},
		{Namespace: "default", Name: "empty", ClusterIP: netip.MustParseAddr("10.43.0.20"),
			Ports: []network.ServicePort{{Name: "http", Port: 80, NodePort: 30081}}},
		{Namespace: "default", Name: "headless", Ports: []network.ServicePort{{Port: 80}}},
	}
	eps := []network.Endpoints{
		{Namespace: "default", Name: "web", Ports: map[string][]netip.AddrPort{
			"http": {ap("10.42.1.7:8080"), ap("10.42.1.5:8080"), ap("10.42.2.9:8080")}}},
		{Namespace: "kube-system", Name: "dns", Ports: map[string][]netip.AddrPort{
			"dns": {ap("10.42.1.3:53")}, "dns-tcp": {ap("10.42.1.3:53")}}},
	}
	return svcs, eps
}

func newProxier(t *testing.T) (*network.Proxier, *networktest.Recorder) {
	t.Helper()
	rec := networktest.NewRecorder()
	p, err := network.NewProxier(network.ProxierConfig{
		Executor:           rec,
		ClusterCIDR:        netip.MustParsePrefix("10.42.0.0/16"),
		LocalhostNodePorts: true,
	})
	if err != nil {
		t.Fatalf("NewProxier: %v", err)
	}
	return p, rec
}

// goldenRestores compares the restores with testdata/name.
func goldenRestores(t *testing.T, name string, rs []networktest.Restore) {
	t.Helper()
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("*" + r.Table + "\n" + r.Rules + "COMMIT\n")
	}
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-proxier to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func mustSync(t *testing.T, p *network.Proxier, svcs []network.Service, eps []network.Endpoints) {
	t.Helper()
	if err := p.Sync(context.Background(), svcs, eps); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func TestProxierFullSync(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	mustSync(t, p, svcs, eps)
	goldenRestores(t, "proxier-full.golden", rec.Restores())

	if got := rec.Sysctl("net.ipv4.conf.all.route_localnet"); got != "1" {
		t.Errorf("route_localnet = %q, want 1", got)
	}
	for _, c := range []struct{ table, chain, target string }{
		{"nat", "PREROUTING", "MINIK-SERVICES"},
		{"nat", "OUTPUT", "MINIK-SERVICES"},
		{"nat", "POSTROUTING", "MINIK-POSTROUTING"},
		{"filter", "INPUT", "MINIK-FIREWALL"},
		{"filter", "OUTPUT", "MINIK-SERVICES"},
		{"filter", "FORWARD", "MINIK-FORWARD"},
	} {
		rules, _ := rec.Chain(c.table, c.chain)
		if !strings.Contains(strings.Join(rules, "\n"), "-j "+c.target) {
			t.Errorf("%s %s has no jump to %s: %q", c.table, c.chain, c.target, rules)
		}
	}
	mustSync(t, p, svcs, eps)
	if rs := rec.Restores(); len(rs) != 0 {
		t.Errorf("Sync without changes wrote %d tables: %v", len(rs), rs)
	}
}

func TestProxierIncremental(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	mustSync(t, p, svcs, eps)
	rec.Restores()

	// One backend of web replaced: web's SVC chain, one new SEP chain, one
	// deleted; MINIK-SERVICES and other services untouched.
	eps[0].Ports["http"][2] = ap("10.42.2.10:8080")
	mustSync(t, p, svcs, eps)
	goldenRestores(t, "proxier-endpoint-change.golden", rec.Restores())

	// web loses all backends: its chains go, MINIK-SERVICES changes, and
	// the filter table rejects instead.
	eps[0].Ports = nil
	mustSync(t, p, svcs, eps)
	goldenRestores(t, "proxier-no-endpoints.golden", rec.Restores())
}

func TestProxierProbabilities(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4} {
		p, rec := newProxier(t)
		var backends []netip.AddrPort
		for i := range n {
			backends = append(backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 42, 1, byte(10 + i)}), 80))
		}
		svcs := []network.Service{{Namespace: "ns", Name: "s", ClusterIP: netip.MustParseAddr("10.43.0.1"),
			Ports: []network.ServicePort{{Port: 80}}}}
		mustSync(t, p, svcs, []network.Endpoints{{Namespace: "ns", Name: "s", Ports: map[string][]netip.AddrPort{"": backends}}})
		var got []string
		for _, r := range rec.Restores() {
			for _, line := range strings.Split(r.Rules, "\n") {
				if strings.HasPrefix(line, "-A MINIK-SVC-") && strings.Contains(line, "-j MINIK-SEP-") {
					prob := "none"
					if _, after, ok := strings.Cut(line, "--probability "); ok {
						prob = strings.Fields(after)[0]
					}
					got = append(got, prob)
				}
			}
		}
		want := map[int][]string{
			1: {"none"},
			2: {"0.5000000000", "none"},
			3: {"0.3333333333", "0.5000000000", "none"},
			4: {"0.2500000000", "0.3333333333", "0.5000000000", "none"},
		}[n]
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%d backends: probabilities (-want +got):\n%s", n, diff)
		}
	}
}

func TestProxierRestoreFailureRewritesAll(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	mustSync(t, p, svcs, eps)
	full := rec.Restores()

	errBoom := errors.New("iptables-restore: boom")
	rec.FailNextRestore(errBoom)
	eps[0].Ports["http"] = eps[0].Ports["http"][:1]
	if err := p.Sync(context.Background(), svcs, eps); !errors.Is(err, errBoom) {
		t.Fatalf("Sync with a failing restore: err = %v, want %v", err, errBoom)
	}
	rec.Restores()
	eps[0].Ports["http"] = []netip.AddrPort{ap("10.42.1.7:8080"), ap("10.42.1.5:8080"), ap("10.42.2.9:8080")}
	mustSync(t, p, svcs, eps)
	got := rec.Restores()
	// The failed nat table is rewritten in full; filter did not change.
	if len(got) != 1 || got[0].Table != "nat" || got[0].Rules != natOf(full) {
		t.Errorf("Sync after a failed restore wrote %+v, want the full nat table:\n%s", got, natOf(full))
	}
}

func natOf(rs []networktest.Restore) string {
	for _, r := range rs {
		if r.Table == "nat" {
			return r.Rules
		}
	}
	return ""
}

func TestProxierTakesOverStaleChains(t *testing.T) {
	old, rec := newProxier(t)
	svcs, eps := state()
	mustSync(t, old, svcs, eps)

	// A restarted agent: the new Proxier finds the old chains, rewrites
	// the ones it wants and deletes the rest.
	p, err := network.NewProxier(network.ProxierConfig{Executor: rec, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		LocalhostNodePorts: true})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, p, svcs[:1], eps[:1])
	chains, _ := rec.ListChains(context.Background(), "nat")
	var svcChains int
	for _, c := range chains {
		if strings.HasPrefix(c, "MINIK-SVC-") {
			svcChains++
		}
	}
	if svcChains != 1 {
		t.Errorf("after takeover nat has %d MINIK-SVC chains, want 1: %q", svcChains, chains)
	}
}

func TestProxierCleanup(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	mustSync(t, p, svcs, eps)
	if err := p.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, table := range []string{"filter", "nat"} {
		chains, _ := rec.ListChains(context.Background(), table)
		for _, c := range chains {
			if strings.HasPrefix(c, "MINIK-") {
				t.Errorf("%s chain %s left after Cleanup", table, c)
			}
			rules, _ := rec.Chain(table, c)
			if strings.Contains(strings.Join(rules, "\n"), "MINIK-") {
				t.Errorf("%s %s still jumps to minik chains: %q", table, c, rules)
			}
		}
	}
	// Sync after Cleanup starts afresh.
	rec.Restores()
	mustSync(t, p, svcs, eps)
	goldenRestores(t, "proxier-full.golden", rec.Restores())
}

func TestProxierInvalidService(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	svcs = append(svcs, network.Service{Namespace: "default", Name: "bad", ClusterIP: netip.MustParseAddr("10.43.0.99"),
		Ports: []network.ServicePort{{Name: "x", Protocol: "icmp", Port: 1}}})
	err := p.Sync(context.Background(), svcs, eps)
	if !errors.Is(err, network.ErrInvalidConfig) || !strings.Contains(err.Error(), "services[4].ports[0]") {
		t.Errorf("Sync with a bad protocol: err = %v, want ErrInvalidConfig naming services[4].ports[0]", err)
	}
	goldenRestores(t, "proxier-full.golden", rec.Restores())
}

// manyServices returns n services with three backends each.
func manyServices(n int) ([]network.Service, []network.Endpoints) {
	svcs := make([]network.Service, n)
	eps := make([]network.Endpoints, n)
	for i := range n {
		name := "svc-" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		svcs[i] = network.Service{Namespace: "many", Name: name,
			ClusterIP: netip.AddrFrom4([4]byte{10, 43, 1, byte(i)}),
			Ports:     []network.ServicePort{{Name: "http", Port: 80, NodePort: uint16(30000 + i)}}}
		var backends []netip.AddrPort
		for j := range 3 {
			backends = append(backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 42, byte(j), byte(i)}), 8080))
		}
		eps[i] = network.Endpoints{Namespace: "many", Name: name, Ports: map[string][]netip.AddrPort{"http": backends}}
	}
	return svcs, eps
}

func TestProxierBatchedRestores(t *testing.T) {
	const maxLines = 40
	rec := networktest.NewRecorder()
	p, err := network.NewProxier(network.ProxierConfig{Executor: rec, MaxRestoreLines: maxLines})
	if err != nil {
		t.Fatal(err)
	}
	svcs, eps := manyServices(60)
	// The Recorder rejects a restore that jumps to a missing chain or
	// deletes a referenced one, so every step below checks the order.
	mustSync(t, p, svcs, eps)
	checkBatches(t, rec.Restores(), maxLines)

	for i := range eps[:30] {
		eps[i].Ports["http"] = eps[i].Ports["http"][1:]
	}
	mustSync(t, p, svcs[10:], eps[10:])
	checkBatches(t, rec.Restores(), maxLines)

	if err := p.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	chains, _ := rec.ListChains(context.Background(), "nat")
	for _, c := range chains {
		if strings.HasPrefix(c, "MINIK-") {
			t.Errorf("chain %s left after Cleanup", c)
		}
	}
}

// checkBatches checks that a sync took several restores, each within
// maxLines unless it holds a single chain.
func checkBatches(t *testing.T, rs []networktest.Restore, maxLines int) {
	t.Helper()
	if len(rs) < 3 {
		t.Errorf("sync took %d restores, want several of at most %d lines", len(rs), maxLines)
	}
	for i, r := range rs {
		lines := strings.Count(r.Rules, "\n")
		if decls := strings.Count(r.Rules, "\n:") + 1; lines > maxLines && decls > 1 {
			t.Errorf("restore %d has %d lines over %d chains, want at most %d lines", i, lines, decls, maxLines)
		}
	}
}

func TestRecorderRejectsBadOrder(t *testing.T) {
	rec := networktest.NewRecorder()
	ctx := context.Background()
	if err := rec.Restore(ctx, "nat", []byte(":MINIK-A - [0:0]\n-A MINIK-A -j MINIK-B\n")); err == nil {
		t.Errorf("Restore with a jump to a missing chain succeeded")
	}
	if err := rec.Restore(ctx, "nat", []byte(":MINIK-B - [0:0]\n:MINIK-A - [0:0]\n-A MINIK-A -j MINIK-B\n")); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if err := rec.Restore(ctx, "nat", []byte(":MINIK-B - [0:0]\n-X MINIK-B\n")); err == nil {
		t.Errorf("Restore deleting a referenced chain succeeded")
	}
}

func TestProxierStaleUDPFlows(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	svcs[1].Ports[0].NodePort = 30053
	mustSync(t, p, svcs, eps)
	if got := rec.StaleFlows(); len(got) != 0 {
		t.Errorf("first Sync deleted flows %v", got)
	}
	flow := func(svc, backend string) network.StaleFlow {
		return network.StaleFlow{Service: netip.MustParseAddrPort(svc), Backend: netip.MustParseAddr(backend)}
	}
	nodePort := func(port uint16, backend string) network.StaleFlow {
		return network.StaleFlow{Service: netip.AddrPortFrom(netip.Addr{}, port), Backend: netip.MustParseAddr(backend)}
	}
	steps := []struct {
		name   string
		change func()
		want   []network.StaleFlow
	}{
		{"TCP backend replaced", func() { eps[0].Ports["http"] = eps[0].Ports["http"][1:] }, nil},
		{"UDP backend added", func() {
			eps[1].Ports["dns"] = []netip.AddrPort{ap("10.42.1.3:53"), ap("10.42.1.4:53")}
		}, nil},
		{"UDP backend removed", func() { eps[1].Ports["dns"] = []netip.AddrPort{ap("10.42.1.4:53")} },
			[]network.StaleFlow{nodePort(30053, "10.42.1.3"), flow("10.43.0.53:53", "10.42.1.3")}},
		{"UDP service deleted", func() { svcs = svcs[:1] },
			[]network.StaleFlow{nodePort(30053, "10.42.1.4"), flow("10.43.0.53:53", "10.42.1.4")}},
	}
	for _, s := range steps {
		s.change()
		mustSync(t, p, svcs, eps)
		if diff := cmp.Diff(s.want, rec.StaleFlows(), cmp.Comparer(func(a, b network.StaleFlow) bool { return a == b })); diff != "" {
			t.Errorf("%s: stale flows (-want +got):\n%s", s.name, diff)
		}
	}
}

// recordedChains returns the rules of rec's nat chains whose names start
// with prefix.
func recordedChains(t *testing.T, rec *networktest.Recorder, prefix string) map[string][]string {
	t.Helper()
	names, _ := rec.ListChains(context.Background(), "nat")
	out := map[string][]string{}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out[n], _ = rec.Chain("nat", n)
		}
	}
	return out
}

func TestProxierSessionAffinity(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	svcs[0].AffinityTimeout = 10800 * time.Second
	mustSync(t, p, svcs, eps)
	goldenRestores(t, "proxier-affinity.golden", rec.Restores())

	svc := recordedChains(t, rec, "MINIK-SVC-")
	seps := recordedChains(t, rec, "MINIK-SEP-")
	var webSvc []string
	for _, rules := range svc {
		if strings.Contains(rules[0], "default/web:http") {
			webSvc = rules
		}
	}
	// Masquerade, then one recent check per backend, then the random
	// choice: a known client never reaches the random rules.
	var kinds []string
	for _, r := range webSvc {
		switch {
		case strings.Contains(r, "--rcheck --seconds 10800 --reap"):
			kinds = append(kinds, "rcheck")
			name := jumpOf(r)
			if !strings.Contains(r, "--name "+name+" ") {
				t.Errorf("rcheck rule checks another list than its target %s: %q", name, r)
			}
			if !strings.Contains(strings.Join(seps[name], "\n"), "-m recent --name "+name+" --set") {
				t.Errorf("%s does not record clients in its own list: %q", name, seps[name])
			}
		case strings.Contains(r, "--probability"):
			kinds = append(kinds, "random")
		case strings.Contains(r, "MINIK-MARK-MASQ"):
			kinds = append(kinds, "masq")
		default:
			kinds = append(kinds, "last")
		}
	}
	want := []string{"masq", "rcheck", "rcheck", "rcheck", "random", "random", "last"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("web's SVC chain (-want +got):\n%s\n%s", diff, strings.Join(webSvc, "\n"))
	}
	// The service without affinity has no recent match.
	for name, rules := range svc {
		if !strings.Contains(rules[0], "default/web:http") && strings.Contains(strings.Join(rules, "\n"), "recent") {
			t.Errorf("%s uses recent without affinity: %q", name, rules)
		}
	}

	// A timeout change rewrites web's SVC chain only.
	svcs[0].AffinityTimeout = 60 * time.Second
	mustSync(t, p, svcs, eps)
	rs := rec.Restores()
	if len(rs) != 1 || strings.Count(rs[0].Rules, "\n:") != 0 || !strings.Contains(rs[0].Rules, "--seconds 60 --reap") {
		t.Errorf("timeout change wrote %+v, want one SVC chain with --seconds 60", rs)
	}
	// Affinity off: web's SVC and SEP chains lose the recent matches.
	svcs[0].AffinityTimeout = 0
	mustSync(t, p, svcs, eps)
	rec.Restores()
	for name, rules := range recordedChains(t, rec, "MINIK-S") {
		if strings.Contains(strings.Join(rules, "\n"), "recent") {
			t.Errorf("%s still uses recent after affinity was turned off: %q", name, rules)
		}
	}
}

func jumpOf(rule string) string {
	f := strings.Fields(rule)
	for i := range f[:len(f)-1] {
		if f[i] == "-j" {
			return f[i+1]
		}
	}
	return ""
}

func TestProxierExternalIPs(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	lb := []netip.Addr{netip.MustParseAddr("172.31.250.12"), netip.MustParseAddr("172.31.250.11")}
	svcs[0].ExternalIPs = lb
	svcs[2].ExternalIPs = lb[:1]
	mustSync(t, p, svcs, eps)
	goldenRestores(t, "proxier-external.golden", rec.Restores())

	var webSvc string
	for name, rules := range recordedChains(t, rec, "MINIK-SVC-") {
		if strings.Contains(rules[0], "default/web:http") {
			webSvc = name
		}
	}
	// Each address's rules are in the bucket of its last 5 bits, which
	// MINIK-SERVICES sends it to.
	services, _ := rec.Chain("nat", "MINIK-SERVICES")
	for ip, bucket := range map[string]string{"172.31.250.11": "MINIK-SERVICES-11", "172.31.250.12": "MINIK-SERVICES-12"} {
		var got []string
		rules, _ := rec.Chain("nat", bucket)
		for _, r := range rules {
			if strings.Contains(r, "-d "+ip+"/32 ") {
				got = append(got, jumpOf(r))
			}
		}
		// Marked for masquerade first, then to the service.
		if diff := cmp.Diff([]string{"MINIK-MARK-MASQ", webSvc}, got); diff != "" {
			t.Errorf("%s rules for %s:80 (-want +got):\n%s", bucket, ip, diff)
		}
		dispatch := fmt.Sprintf("-A MINIK-SERVICES -d 0.0.0.%s/0.0.0.31 -j %s", bucket[len(bucket)-2:], bucket)
		if !slices.Contains(services, dispatch) {
			t.Errorf("MINIK-SERVICES lacks %q:\n%s", dispatch, strings.Join(services, "\n"))
		}
	}
	reject, _ := rec.Chain("filter", "MINIK-SERVICES")
	if !strings.Contains(strings.Join(reject, "\n"), `"default/empty:http has no endpoints" -d 172.31.250.12/32 -p tcp -m tcp --dport 80 -j REJECT`) {
		t.Errorf("filter MINIK-SERVICES does not reject the empty service's external IP:\n%s", strings.Join(reject, "\n"))
	}

	svcs[0].ExternalIPs = []netip.Addr{netip.MustParseAddr("fd00::1")}
	err := p.Sync(context.Background(), svcs, eps)
	if !errors.Is(err, network.ErrInvalidConfig) || !strings.Contains(err.Error(), "services[0].externalIPs") {
		t.Errorf("Sync with an IPv6 external IP: err = %v, want ErrInvalidConfig naming services[0].externalIPs", err)
	}
}

func TestProxierPodCIDR(t *testing.T) {
	rec := networktest.NewRecorder()
	p, err := network.NewProxier(network.ProxierConfig{Executor: rec, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		PodCIDR: netip.MustParsePrefix("10.42.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	svcs, eps := state()
	svcs[1].AffinityTimeout = time.Minute
	eps[1].Ports["dns"] = append(eps[1].Ports["dns"], ap("10.42.7.3:53"))
	mustSync(t, p, svcs, eps)
	goldenRestores(t, "proxier-podcidr.golden", rec.Restores())

	// Only the backends in 10.42.1.0/24 have chains (with the hairpin
	// masquerade); the others are DNATed to from the service chains.
	var seps []string
	for _, rules := range recordedChains(t, rec, "MINIK-SEP-") {
		seps = append(seps, strings.Fields(rules[0])[3]) // -A NAME -s IP/32
	}
	slices.Sort(seps)
	if diff := cmp.Diff([]string{"10.42.1.3/32", "10.42.1.3/32", "10.42.1.5/32", "10.42.1.7/32"}, seps); diff != "" {
		t.Errorf("MINIK-SEP chains' sources (-want +got):\n%s", diff)
	}
	var inline []string
	for _, rules := range recordedChains(t, rec, "MINIK-SVC-") {
		for _, r := range rules {
			if strings.Contains(r, "DNAT") {
				inline = append(inline, r[strings.Index(r, " -")+1:])
			}
		}
	}
	slices.Sort(inline)
	want := []string{
		"-m recent --name MINIK-SEP-XLUITXCXR6BNKKY6 --set -p udp -m udp -j DNAT --to-destination 10.42.7.3:53",
		"-m recent --name MINIK-SEP-XLUITXCXR6BNKKY6 --update --seconds 60 --reap -p udp -m udp -j DNAT --to-destination 10.42.7.3:53",
		"-p tcp -m tcp -j DNAT --to-destination 10.42.2.9:8080",
	}
	if diff := cmp.Diff(want, inline); diff != "" {
		t.Errorf("DNAT rules in service chains (-want +got):\n%s", diff)
	}

	if _, err := network.NewProxier(network.ProxierConfig{Executor: rec, PodCIDR: netip.MustParsePrefix("fd00::/64")}); !errors.Is(err, network.ErrInvalidConfig) {
		t.Errorf("NewProxier with an IPv6 podCIDR: err = %v, want ErrInvalidConfig", err)
	}
}

// TestProxierRemoteNodePorts: the node and its pods reach NodePorts at
// other nodes' addresses through this node's MINIK-NODEPORTS, before the
// rule for the node's own addresses; other sources and IPv6 addresses get
// no rule, and without a podCIDR the pods get none.
func TestProxierRemoteNodePorts(t *testing.T) {
	rec := networktest.NewRecorder()
	p, err := network.NewProxier(network.ProxierConfig{Executor: rec, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		PodCIDR: netip.MustParsePrefix("10.42.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	p.SetRemoteNodes([]netip.Addr{netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("fd00::2"),
		netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")})
	svcs, eps := state()
	mustSync(t, p, svcs, eps)
	nodePortRules := func(rec *networktest.Recorder) []string {
		t.Helper()
		rules, ok := rec.Chain("nat", "MINIK-SERVICES")
		if !ok {
			t.Fatal("no MINIK-SERVICES chain")
		}
		var out []string
		for _, r := range rules {
			if strings.HasSuffix(r, "-j MINIK-NODEPORTS") {
				out = append(out, r)
			}
		}
		return out
	}
	want := []string{
		"-A MINIK-SERVICES -s 10.42.1.0/24 -d 192.0.2.2/32 -j MINIK-NODEPORTS",
		"-A MINIK-SERVICES -d 192.0.2.2/32 -m addrtype --src-type LOCAL -j MINIK-NODEPORTS",
		"-A MINIK-SERVICES -s 10.42.1.0/24 -d 192.0.2.3/32 -j MINIK-NODEPORTS",
		"-A MINIK-SERVICES -d 192.0.2.3/32 -m addrtype --src-type LOCAL -j MINIK-NODEPORTS",
		`-A MINIK-SERVICES -m comment --comment "minik service nodeports; must be the last rule" -m addrtype --dst-type LOCAL -j MINIK-NODEPORTS`,
	}
	if diff := cmp.Diff(want, nodePortRules(rec)); diff != "" {
		t.Errorf("jumps to MINIK-NODEPORTS (-want +got):\n%s", diff)
	}

	// A node leaving takes its rule along.
	p.SetRemoteNodes([]netip.Addr{netip.MustParseAddr("192.0.2.3")})
	mustSync(t, p, svcs, eps)
	if diff := cmp.Diff(want[2:], nodePortRules(rec)); diff != "" {
		t.Errorf("after node 192.0.2.2 left, jumps to MINIK-NODEPORTS (-want +got):\n%s", diff)
	}

	// Without a podCIDR the node's pods cannot be told apart: only the
	// node's own traffic is served.
	rec2 := networktest.NewRecorder()
	p2, err := network.NewProxier(network.ProxierConfig{Executor: rec2, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	p2.SetRemoteNodes([]netip.Addr{netip.MustParseAddr("192.0.2.3")})
	mustSync(t, p2, svcs, eps)
	if diff := cmp.Diff(want[3:], nodePortRules(rec2)); diff != "" {
		t.Errorf("without a podCIDR, jumps to MINIK-NODEPORTS (-want +got):\n%s", diff)
	}
}

// discardExec is an Executor that applies nothing, to measure the
// proxier's own work.
type discardExec struct{}

func (discardExec) Restore(context.Context, string, []byte) error               { return nil }
func (discardExec) EnsureRule(context.Context, string, string, ...string) error { return nil }
func (discardExec) DeleteRule(context.Context, string, string, ...string) error { return nil }
func (discardExec) ListChains(context.Context, string) ([]string, error)        { return nil, nil }
func (discardExec) SetSysctl(context.Context, string, string) error             { return nil }

// BenchmarkProxierOwnWork measures a one-endpoint Sync at 5,000 services
// × 3 endpoints without iptables: the proxier's share of the time that
// BenchmarkProxierSync (integration) reports.
func BenchmarkProxierOwnWork(b *testing.B) {
	svcs, eps := manyServices(5000)
	for _, podCIDR := range []string{"10.42.0.0/24", ""} {
		b.Run("podCIDR="+podCIDR, func(b *testing.B) {
			cfg := network.ProxierConfig{Executor: discardExec{}, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16")}
			if podCIDR != "" {
				cfg.PodCIDR = netip.MustParsePrefix(podCIDR)
			}
			p, err := network.NewProxier(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := p.Sync(ctx, svcs, eps); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				i++
				eps[0].Ports["http"][0] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 41, byte(i >> 8), byte(i)}), 8080)
				if err := p.Sync(ctx, svcs, eps); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestProxierSharedChainsRewrittenOnlyWhenChanged(t *testing.T) {
	p, rec := newProxier(t)
	svcs, eps := state()
	mustSync(t, p, svcs, eps)
	rec.Restores()
	// A ClusterIP service with a backend: its chain and MINIK-SERVICES,
	// not MINIK-NODEPORTS nor the filter table.
	svcs = append(svcs, network.Service{Namespace: "default", Name: "extra", ClusterIP: netip.MustParseAddr("10.43.0.30"),
		Ports: []network.ServicePort{{Name: "http", Port: 80}}})
	eps = append(eps, network.Endpoints{Namespace: "default", Name: "extra",
		Ports: map[string][]netip.AddrPort{"http": {ap("10.42.1.30:8080")}}})
	mustSync(t, p, svcs, eps)
	var got []string
	for _, r := range rec.Restores() {
		for _, l := range strings.Split(r.Rules, "\n") {
			if strings.HasPrefix(l, ":") && !strings.HasPrefix(l, ":MINIK-SVC-") && !strings.HasPrefix(l, ":MINIK-SEP-") {
				got = append(got, r.Table+" "+strings.Fields(l)[0][1:])
			}
		}
	}
	// 10.43.0.30 is in bucket 30, which had no rules before: it
	// comes, and MINIK-SERVICES gets a rule to it.
	if diff := cmp.Diff([]string{"nat MINIK-SERVICES-30", "nat MINIK-SERVICES"}, got); diff != "" {
		t.Errorf("shared chains written for a new ClusterIP service (-want +got):\n%s", diff)
	}
	// Another in the same bucket: that bucket only.
	svcs = append(svcs, network.Service{Namespace: "default", Name: "extra2", ClusterIP: netip.MustParseAddr("10.43.0.62"),
		Ports: []network.ServicePort{{Name: "http", Port: 80}}})
	eps = append(eps, network.Endpoints{Namespace: "default", Name: "extra2",
		Ports: map[string][]netip.AddrPort{"http": {ap("10.42.1.31:8080")}}})
	mustSync(t, p, svcs, eps)
	got = nil
	for _, r := range rec.Restores() {
		for _, l := range strings.Split(r.Rules, "\n") {
			if strings.HasPrefix(l, ":") && !strings.HasPrefix(l, ":MINIK-SVC-") && !strings.HasPrefix(l, ":MINIK-SEP-") {
				got = append(got, r.Table+" "+strings.Fields(l)[0][1:])
			}
		}
	}
	if diff := cmp.Diff([]string{"nat MINIK-SERVICES-30"}, got); diff != "" {
		t.Errorf("shared chains written for a second ClusterIP service in bucket 30 (-want +got):\n%s", diff)
	}
}
