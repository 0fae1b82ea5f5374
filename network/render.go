package network

import (
	"fmt"
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
}

func (c *chain) add(format string, args ...any) {
	c.rules = append(c.rules, "-A "+c.name+" "+fmt.Sprintf(format, args...))
}

// renderOptions are the node-wide settings rendering depends on.
type renderOptions struct {
	clusterCIDR        netip.Prefix // zero: no masquerade for off-cluster sources
	localhostNodePorts bool
}

// render returns the proxy's chains per table. The order of chains within a
// table is deterministic.
func render(ports []svcPort, opt renderOptions) map[string][]*chain {
	natSvcs := &chain{name: chainServices}
	nodePorts := &chain{name: chainNodePorts}
	filterSvcs := &chain{name: chainServices}
	nat := []*chain{natSvcs, nodePorts}
	for _, sp := range ports {
		if len(sp.backends) == 0 {
			renderReject(filterSvcs, sp)
			continue
		}
		natSvcs.add(`-m comment --comment "%s cluster IP" -d %s/32 -p %s -m %s --dport %d -j %s`,
			sp.key, sp.clusterIP, sp.proto, sp.proto, sp.port, sp.svcChain)
		// External addresses (load balancer ingress) are reached like
		// NodePorts: from anywhere, so replies need this node as source.
		for _, ip := range sp.external {
			natSvcs.add(`-m comment --comment "%s external IP" -d %s/32 -p %s -m %s --dport %d -j %s`,
				sp.key, ip, sp.proto, sp.proto, sp.port, chainMarkMasq)
			natSvcs.add(`-m comment --comment "%s external IP" -d %s/32 -p %s -m %s --dport %d -j %s`,
				sp.key, ip, sp.proto, sp.proto, sp.port, sp.svcChain)
		}
		if sp.nodePort != 0 {
			nodePorts.add(`-m comment --comment %s -p %s -m %s --dport %d -j %s`,
				sp.key, sp.proto, sp.proto, sp.nodePort, chainMarkMasq)
			nodePorts.add(`-m comment --comment %s -p %s -m %s --dport %d -j %s`,
				sp.key, sp.proto, sp.proto, sp.nodePort, sp.svcChain)
		}
		nat = append(nat, renderService(sp, opt)...)
	}
	natSvcs.add(`-m comment --comment "minik service nodeports; must be the last rule" -m addrtype --dst-type LOCAL -j %s`,
		chainNodePorts)
	nat = append(nat, renderMasq()...)
	filter := []*chain{filterSvcs, renderForward()}
	if opt.localhostNodePorts {
		filter = append(filter, renderFirewall())
	}
	return map[string][]*chain{"filter": filter, "nat": nat}
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
// were passed over), and one MINIK-SEP chain per backend.
//
// With ClientIP affinity every MINIK-SEP chain records the client's
// address in a recent list named after the chain, and the MINIK-SVC chain
// first sends a client seen within the timeout back to the backend whose
// list holds it; --reap drops older entries. The lists live in the kernel
// (/proc/net/xt_recent/<chain>), at most 100 clients each by default.
func renderService(sp svcPort, opt renderOptions) []*chain {
	svc := &chain{name: sp.svcChain}
	if opt.clusterCIDR.IsValid() {
		svc.add(`-m comment --comment "%s cluster IP" ! -s %s -d %s/32 -p %s -m %s --dport %d -j %s`,
			sp.key, opt.clusterCIDR, sp.clusterIP, sp.proto, sp.proto, sp.port, chainMarkMasq)
	}
	out := []*chain{svc}
	if sp.affinity > 0 {
		for _, b := range sp.backends {
			sep := sp.sepChain(b)
			svc.add(`-m comment --comment "%s -> %s" -m recent --name %s --rcheck --seconds %d --reap -j %s`,
				sp.key, b, sep, sp.affinity, sep)
		}
	}
	n := len(sp.backends)
	for i, b := range sp.backends {
		sep := &chain{name: sp.sepChain(b)}
		if i < n-1 {
			svc.add(`-m comment --comment "%s -> %s" -m statistic --mode random --probability %0.10f -j %s`,
				sp.key, b, 1/float64(n-i), sep.name)
		} else {
			svc.add(`-m comment --comment "%s -> %s" -j %s`, sp.key, b, sep.name)
		}
		// A backend reaching its own service comes back through the
		// bridge (hairpin) and must see the node as the source.
		sep.add(`-m comment --comment %s -s %s/32 -j %s`, sp.key, b.Addr(), chainMarkMasq)
		if sp.affinity > 0 {
			sep.add(`-m comment --comment %s -m recent --name %s --set -p %s -m %s -j DNAT --to-destination %s`,
				sp.key, sep.name, sp.proto, sp.proto, b)
		} else {
			sep.add(`-m comment --comment %s -p %s -m %s -j DNAT --to-destination %s`, sp.key, sp.proto, sp.proto, b)
		}
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
	return strings.HasPrefix(name, "MINIK-SVC-") || strings.HasPrefix(name, "MINIK-SEP-")
}
