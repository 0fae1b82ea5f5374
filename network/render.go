package network

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"net/netip"
	"strings"
)

// Chains the proxy owns, besides the per-service MINIK-SVC-* and
// per-backend MINIK-SEP-* chains.
const (
	chainServices    = "MINIK-SERVICES"
	chainNodePorts   = "MINIK-NODEPORTS"
	chainMarkMasq    = "MINIK-MARK-MASQ"
	chainPostrouting = "MINIK-POSTROUTING"
	chainForward     = "MINIK-FORWARD"
	chainFirewall    = "MINIK-FIREWALL"
)

// masqMark marks packets MINIK-POSTROUTING masquerades (the bit
// kube-proxy uses; portmap uses 0x2000).
const masqMark = "0x4000"

// tables lists the tables the proxy writes, in the order it writes them.
var tables = []string{"filter", "nat"}

// chain is one rendered chain; rules are complete "-A <name> ..." lines.
type chain struct {
	name  string
	rules []string
	hash  uint64 // of rules once computed (see sum); 0 until then
}

func (c *chain) add(format string, args ...any) {
	c.rules = append(c.rules, "-A "+c.name+" "+fmt.Sprintf(format, args...))
}

// sum returns the hash of c's rules, computed once: chains are not changed
// after rendering.
func (c *chain) sum() uint64 {
	if c.hash == 0 {
		c.hash = hashRules(c.rules)
	}
	return c.hash
}

// renderOptions are the node-wide settings rendering depends on.
type renderOptions struct {
	clusterCIDR        netip.Prefix // zero: no masquerade for off-cluster sources
	podCIDR            netip.Prefix // zero: every backend may be local
	localhostNodePorts bool
	// remoteNodes are the other nodes' addresses, sorted: the node and
	// its pods reach their NodePorts here (see render).
	remoteNodes []netip.Addr
}

// local reports whether backend b may be a pod of this node.
func (o renderOptions) local(b netip.AddrPort) bool {
	return !o.podCIDR.IsValid() || o.podCIDR.Contains(b.Addr())
}

// portRules is the rendering of one service port: its rules in the shared
// chains and its own chains. A Proxier keeps them between syncs and
// renders again only the ports that changed, so a sync of one change
// among thousands of services costs little more than the lookups.
type portRules struct {
	sp          svcPort
	natServices []bucketRules // in the MINIK-SERVICES-NN buckets
	nodePorts   []string      // in MINIK-NODEPORTS
	reject      []string      // in filter MINIK-SERVICES
	chains      []*chain      // MINIK-SVC and MINIK-SEP chains
	// sums hashes nodePorts and reject, so the shared chains' hashes
	// come from 8 bytes per port instead of their rules.
	sums [2]uint64
}

// serviceBuckets is how many chains the rules matching service addresses
// are spread over, by the low bits of the address: MINIK-SERVICES sends a
// packet to MINIK-SERVICES-NN by its destination. A new service rewrites
// one bucket instead of a rule for every service, and a packet passes at
// most serviceBuckets rules plus its bucket's.
const serviceBuckets = 32

// bucketOf returns the bucket of rules matching destination ip.
func bucketOf(ip netip.Addr) int { return int(ip.As4()[3]) & (serviceBuckets - 1) }

func bucketChain(b int) string { return fmt.Sprintf("%s-%02d", chainServices, b) }

// bucketRules are a port's rules in one bucket, with their hash.
type bucketRules struct {
	bucket int
	rules  []string
	sum    uint64
}

// addToBucket adds rule to the last of rs if it is bucket b's, else to a
// new bucketRules.
func addToBucket(rs []bucketRules, b int, rule string) []bucketRules {
	if n := len(rs); n > 0 && rs[n-1].bucket == b {
		rs[n-1].rules = append(rs[n-1].rules, rule)
		return rs
	}
	return append(rs, bucketRules{bucket: b, rules: []string{rule}})
}

// shared is a chain made of every port's rules of one kind, hashed from
// the ports' hashes of those rules.
type shared struct {
	chain
	h hash.Hash64
}

func newShared(name string, size int) *shared {
	return &shared{chain: chain{name: name, rules: make([]string, 0, size)}, h: fnv.New64a()}
}

func (c *shared) addPort(rules []string, sum uint64) {
	if len(rules) == 0 {
		return // the chain is the same with or without this port
	}
	c.rules = append(c.rules, rules...)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], sum)
	c.h.Write(b[:])
}

// done adds the chain's own last rules and fixes its hash.
func (c *shared) done(last ...string) *chain {
	c.rules = append(c.rules, last...)
	for _, r := range last {
		c.h.Write([]byte(r))
	}
	c.hash = c.h.Sum64() | 1
	return &c.chain
}

// renderPort renders one service port.
func renderPort(sp svcPort, opt renderOptions) *portRules {
	nodePorts := &chain{name: chainNodePorts}
	filterSvcs := &chain{name: chainServices}
	pr := &portRules{sp: sp}
	if len(sp.backends) == 0 {
		renderReject(filterSvcs, sp)
		pr.reject = filterSvcs.rules
		pr.sums = [2]uint64{hashRules(nil), hashRules(pr.reject)}
		return pr
	}
	add := func(ip netip.Addr, format string, args ...any) {
		b := bucketOf(ip)
		pr.natServices = addToBucket(pr.natServices, b, "-A "+bucketChain(b)+" "+fmt.Sprintf(format, args...))
	}
	add(sp.clusterIP, `-m comment --comment "%s cluster IP" -d %s/32 -p %s -m %s --dport %d -j %s`,
		sp.key, sp.clusterIP, sp.proto, sp.proto, sp.port, sp.svcChain)
	// External addresses (load balancer ingress) are reached like
	// NodePorts: from anywhere, so replies need this node as source.
	for _, ip := range sp.external {
		add(ip, `-m comment --comment "%s external IP" -d %s/32 -p %s -m %s --dport %d -j %s`,
			sp.key, ip, sp.proto, sp.proto, sp.port, chainMarkMasq)
		add(ip, `-m comment --comment "%s external IP" -d %s/32 -p %s -m %s --dport %d -j %s`,
			sp.key, ip, sp.proto, sp.proto, sp.port, sp.svcChain)
	}
	for i := range pr.natServices {
		pr.natServices[i].sum = hashRules(pr.natServices[i].rules)
	}
	if sp.nodePort != 0 {
		nodePorts.add(`-m comment --comment %s -p %s -m %s --dport %d -j %s`,
			sp.key, sp.proto, sp.proto, sp.nodePort, chainMarkMasq)
		nodePorts.add(`-m comment --comment %s -p %s -m %s --dport %d -j %s`,
			sp.key, sp.proto, sp.proto, sp.nodePort, sp.svcChain)
	}
	pr.nodePorts = nodePorts.rules
	pr.chains = renderService(sp, opt)
	pr.sums = [2]uint64{hashRules(pr.nodePorts), hashRules(pr.reject)}
	return pr
}

// render returns the proxy's chains per table, and the rendering of every
// port for the next call. Ports equal to their rendering in prev reuse it.
// It sets the svcChain of every port.
// The order of chains within a table is deterministic.
func render(ports []svcPort, opt renderOptions, prev map[string]*portRules) (map[string][]*chain, map[string]*portRules) {
	next := make(map[string]*portRules, len(ports))
	var buckets [serviceBuckets]*shared
	nodePorts := newShared(chainNodePorts, 0)
	filterSvcs := newShared(chainServices, 0)
	nat := make([]*chain, 2, 4+serviceBuckets+len(ports)) // MINIK-SERVICES and MINIK-NODEPORTS first, once complete
	for i := range ports {
		sp := &ports[i]
		pr := prev[sp.id]
		if pr != nil {
			sp.svcChain = pr.sp.svcChain
		} else {
			sp.svcChain = chainName("MINIK-SVC-", sp.id)
		}
		if pr == nil || !pr.sp.equal(*sp) {
			pr = renderPort(*sp, opt)
		}
		next[sp.id] = pr
		for _, br := range pr.natServices {
			if buckets[br.bucket] == nil {
				buckets[br.bucket] = newShared(bucketChain(br.bucket), 2*len(ports)/serviceBuckets)
			}
			buckets[br.bucket].addPort(br.rules, br.sum)
		}
		nodePorts.addPort(pr.nodePorts, pr.sums[0])
		filterSvcs.addPort(pr.reject, pr.sums[1])
		nat = append(nat, pr.chains...)
	}
	natSvcs := &chain{name: chainServices}
	for b, c := range buckets {
		if c != nil {
			natSvcs.add(`-d 0.0.0.%d/0.0.0.%d -j %s`, b, serviceBuckets-1, c.name)
			nat = append(nat, c.done())
		}
	}
	// The node and its pods reach other nodes' NodePorts here, not at
	// that node: when the chosen backend runs on this node again, that
	// node would send the packet back out the way it came, which a
	// bridge carrying its address drops when it passes bridged traffic
	// to iptables (br_netfilter takes such a DNAT for bridged traffic,
	// and a bridge sends no frame back out the port it came in on).
	for _, ip := range opt.remoteNodes {
		if opt.podCIDR.IsValid() {
			natSvcs.add(`-s %s -d %s/32 -j %s`, opt.podCIDR, ip, chainNodePorts)
		}
		natSvcs.add(`-d %s/32 -m addrtype --src-type LOCAL -j %s`, ip, chainNodePorts)
	}
	natSvcs.add(`-m comment --comment "minik service nodeports; must be the last rule" -m addrtype --dst-type LOCAL -j %s`,
		chainNodePorts)
	nat[0], nat[1] = natSvcs, nodePorts.done()
	nat = append(nat, renderMasq()...)
	filter := []*chain{filterSvcs.done(), renderForward()}
	if opt.localhostNodePorts {
		filter = append(filter, renderFirewall())
	}
	return map[string][]*chain{"filter": filter, "nat": nat}, next
}

// renderReject rejects new connections to a service port without backends.
func renderReject(c *chain, sp svcPort) {
	c.add(`-m comment --comment "%s has no endpoints" -d %s/32 -p %s -m %s --dport %d -j REJECT --reject-with icmp-port-unreachable`,
		sp.key, sp.clusterIP, sp.proto, sp.proto, sp.port)
	for _, ip := range sp.external {
		c.add(`-m comment --comment "%s has no endpoints" -d %s/32 -p %s -m %s --dport %d -j REJECT --reject-with icmp-port-unreachable`,
			sp.key, ip, sp.proto, sp.proto, sp.port)
	}
	if sp.nodePort != 0 {
		c.add(`-m comment --comment "%s has no endpoints" -m addrtype --dst-type LOCAL -p %s -m %s --dport %d -j REJECT --reject-with icmp-port-unreachable`,
			sp.key, sp.proto, sp.proto, sp.nodePort)
	}
}

// renderService returns sp's MINIK-SVC chain, which picks a backend at
// random (backend i of n with probability 1/(n-i) once the earlier ones
// were passed over), and a MINIK-SEP chain per local backend.
//
// A local backend's MINIK-SEP chain masquerades the backend's own traffic
// (a pod reaching itself through the service comes back through the
// bridge and must see the node as the source) and DNATs to it. A remote
// backend needs no such rule: its traffic to the service is DNATed on its
// own node. The service chain DNATs to it straight away, which keeps the
// nat table to one chain per service port: with nf_tables every change
// has the kernel check every chain reachable from the hooks, so fewer
// chains make every sync faster (see doc.go).
//
// With ClientIP affinity the backend's rule records the client's address
// in a recent list named after the backend (as its MINIK-SEP chain is),
// and the service chain first sends a client seen within the timeout back
// to the backend whose list holds it; --reap drops older entries. The
// lists live in the kernel (/proc/net/xt_recent/<name>), at most 100
// clients each by default.
func renderService(sp svcPort, opt renderOptions) []*chain {
	svc := &chain{name: sp.svcChain}
	if opt.clusterCIDR.IsValid() {
		svc.add(`-m comment --comment "%s cluster IP" ! -s %s -d %s/32 -p %s -m %s --dport %d -j %s`,
			sp.key, opt.clusterCIDR, sp.clusterIP, sp.proto, sp.proto, sp.port, chainMarkMasq)
	}
	out := []*chain{svc}
	dnat := func(b netip.AddrPort) string {
		return fmt.Sprintf("-p %s -m %s -j DNAT --to-destination %s", sp.proto, sp.proto, b)
	}
	if sp.affinity > 0 {
		for _, b := range sp.backends {
			list := sp.sepChain(b)
			if opt.local(b) {
				svc.add(`-m recent --name %s --rcheck --seconds %d --reap -j %s`, list, sp.affinity, list)
			} else {
				svc.add(`-m recent --name %s --update --seconds %d --reap %s`, list, sp.affinity, dnat(b))
			}
		}
	}
	n := len(sp.backends)
	for i, b := range sp.backends {
		random := ""
		if i < n-1 {
			random = fmt.Sprintf("-m statistic --mode random --probability %0.10f ", 1/float64(n-i))
		}
		name := sp.sepChain(b)
		set := ""
		if sp.affinity > 0 {
			set = "-m recent --name " + name + " --set "
		}
		if !opt.local(b) {
			svc.add(`%s%s%s`, random, set, dnat(b))
			continue
		}
		svc.add(`%s-j %s`, random, name)
		sep := &chain{name: name}
		sep.add(`-s %s/32 -j %s`, b.Addr(), chainMarkMasq)
		sep.add(`%s%s`, set, dnat(b))
		out = append(out, sep)
	}
	return out
}

// renderMasq returns the chains that mark and masquerade service traffic.
func renderMasq() []*chain {
	mark := &chain{name: chainMarkMasq}
	mark.add("-j MARK --or-mark %s", masqMark)
	post := &chain{name: chainPostrouting}
	post.add("-m mark ! --mark %s/%s -j RETURN", masqMark, masqMark)
	post.add("-j MARK --xor-mark %s", masqMark) // not again on a re-traversal
	post.add(`-m comment --comment "minik service traffic requiring SNAT" -j MASQUERADE`)
	return []*chain{mark, post}
}

// renderForward accepts forwarded service traffic even where the FORWARD
// policy drops.
func renderForward() *chain {
	c := &chain{name: chainForward}
	c.add(`-m comment --comment "minik forwarding rules" -m mark --mark %s/%s -j ACCEPT`, masqMark, masqMark)
	c.add(`-m comment --comment "minik forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
	return c
}

// renderFirewall drops packets to 127.0.0.0/8 that did not come from it.
// route_localnet, which NodePorts on 127.0.0.1 need, would otherwise let
// other hosts reach services bound to localhost (CVE-2020-8558).
func renderFirewall() *chain {
	c := &chain{name: chainFirewall}
	c.add(`-m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`)
	return c
}

// jump is a fixed rule in a built-in chain that leads into a proxy chain.
type jump struct {
	table, chain string
	rule         []string
}

// jumps returns the rules that hook the proxy's chains into the built-in
// chains.
func jumps(opt renderOptions) []jump {
	newConn := []string{"-m", "conntrack", "--ctstate", "NEW"}
	to := func(table, from, target, comment string, extra ...string) jump {
		rule := append(append([]string{}, extra...), "-m", "comment", "--comment", comment, "-j", target)
		return jump{table, from, rule}
	}
	js := []jump{
		to("nat", "PREROUTING", chainServices, "minik service portals"),
		to("nat", "OUTPUT", chainServices, "minik service portals"),
		to("nat", "POSTROUTING", chainPostrouting, "minik postrouting rules"),
		to("filter", "INPUT", chainServices, "minik service portals", newConn...),
		to("filter", "FORWARD", chainServices, "minik service portals", newConn...),
		to("filter", "OUTPUT", chainServices, "minik service portals", newConn...),
		to("filter", "FORWARD", chainForward, "minik forwarding rules"),
	}
	if opt.localhostNodePorts {
		js = append(js,
			to("filter", "INPUT", chainFirewall, "minik firewall"),
			to("filter", "OUTPUT", chainFirewall, "minik firewall"))
	}
	return js
}

// ownedChain reports whether name is one of the proxy's chains.
func ownedChain(name string) bool {
	switch name {
	case chainServices, chainNodePorts, chainMarkMasq, chainPostrouting, chainForward, chainFirewall:
		return true
	}
	return strings.HasPrefix(name, "MINIK-SVC-") || strings.HasPrefix(name, "MINIK-SEP-") ||
		strings.HasPrefix(name, chainServices+"-")
}
