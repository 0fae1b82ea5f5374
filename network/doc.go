// Package network wires pods into the node's network and keeps the node's
// routing and service rules in step with the cluster.
//
// # Pod network
//
// [CNI] runs the standard CNI plugins (bridge, host-local, portmap, loopback)
// through libcni with a network configuration list rendered from [Config].
// Every pod gets a veth pair into one Linux bridge per node, an address from
// the node's podCIDR and a default route via the bridge. Traffic from pods to
// destinations outside the cluster CIDR is masqueraded by a chain the node
// owns (MINIK-MASQ-<bridge>), so pod-to-pod traffic across nodes keeps its
// source address.
//
// All state (host-local leases, libcni's result cache) lives under
// [Config.DataDir], and the bridge name and chain names derive from
// [Config.BridgeName], so several agents can share one host as long as each
// has its own data dir and bridge name (or network namespace).
//
// # Routes
//
// [Router] installs host-gw style routes: one route per remote node,
// sending that node's podCIDR via its node IP. Routes are tagged with a
// dedicated routing protocol number ([DefaultRouteProtocol]) so that
// [Router.SyncRoutes] only ever removes routes it installed.
//
// # Service proxy
//
// [Proxier] renders Services and Endpoints into iptables nat chains owned by
// minik (MINIK-SERVICES and below) and applies them through an [Executor]
// with iptables-restore --noflush, declaring and rewriting only the chains
// whose content changed (it keeps what it applied; it lists the tables
// only after a restart or a failed restore). Large changes are split into
// several restores, ordered so that every jump has its target in between
// (see [DefaultMaxRestoreLines]). UDP conntrack entries to removed backends
// are deleted, so clients of a UDP service (DNS) move on to the new
// backends.
//
// MINIK-SERVICES sends a packet by the last 5 bits of its destination to
// one of 32 buckets, MINIK-SERVICES-NN, holding the rules of the service
// addresses that end so; a new service rewrites its bucket only. Each
// service port has a MINIK-SVC chain choosing a backend at random, or
// by ClientIP session affinity (recent lists) first. Backends in the
// node's pod CIDR get a MINIK-SEP chain with the hairpin masquerade; the
// others are DNATed to from the service chain itself. Load balancer
// ingress IPs are served like the cluster IP, marked for masquerade like
// NodePorts.
//
// NodePorts at other nodes' addresses ([Proxier.SetRemoteNodes]) are
// served to the node itself and its pods by the node, as if addressed to
// it. At the other node, a backend on the client's node would be reached
// back out the link the packet came in on, which fails where that node's
// address is on a bridge and br_netfilter is on: the kernel then takes
// the DNATed packet for bridged traffic, and a bridge sends no frame back
// out the port it came in on.
//
// # Sync cost
//
// With nf_tables, what an incremental restore costs is the kernel's
// commit: adding any rule with a jump, a DNAT or an xtables match makes
// nf_tables validate every chain reachable from the table's base chains,
// once per hook (nat PREROUTING and OUTPUT), so the commit grows with the
// whole table, not with the change. iptables-nft-restore itself fetches
// no rules for inputs of chain declarations and appends: with 5,000
// services one sendmsg (the commit) took 99% of the restore's system
// time, and an empty restore 3 ms. Fewer chains and rules make every sync
// cheaper, which is why remote backends have no chain of their own and
// service and backend chains carry no comments: one rule added to a
// 5,000-service table took 80 ms with a chain per backend and comments,
// 53 ms with neither comments nor the hairpin rules, 33 ms with backends
// inlined. iptables-legacy has no such validation but replaces the whole
// table on every restore.
//
// Time from Sync to rules applied (BenchmarkProxierSync, services × 3
// endpoints; layout podCIDR: the node's pod CIDR 10.42.0.0/24 holds 256 of
// the backends; all-local: every backend has its chain). One endpoint and
// its restore: median / minimum of 15; empty: an empty restore against the
// same tables after each of them; the rest one run or the mean of three.
// 2-core VM at load average 4.5–6.2 from other work:
//
//	backend  layout     services  first   full rewrite  one endpoint     its restore      empty            one new service
//	nft      podCIDR    1,000     0.28 s  0.39 s        22 / 15 ms       19 / 14 ms       2.2 / 1.7 ms     24 ms
//	nft      podCIDR    5,000     1.3 s   2.3 s         55 / 50 ms       46 / 42 ms       2.0 / 1.6 ms     64 ms
//	nft      all-local  5,000     3.8 s   5.6 s         86 / 59 ms       74 / 51 ms       1.8 / 1.7 ms     113 ms
//	legacy   podCIDR    1,000     0.45 s  0.44 s        37 / 29 ms       34 / 28 ms       16 / 13 ms       46 ms
//	legacy   podCIDR    5,000     2.0 s   1.4 s         160 / 147 ms     150 / 138 ms     66 / 62 ms       164 ms
//	legacy   all-local  5,000     2.7 s   4.5 s         338 / 301 ms     322 / 282 ms     132 / 124 ms     389 ms
//
// A full rewrite happens after a restart or a failed restore. Before the
// proxier kept each port's rendering, inlined remote backends and split
// MINIK-SERVICES into buckets, at 5,000 services one endpoint took 0.27 s
// (nft) and 1.0 s (legacy), 0.12 s of it rendering, and one new service
// 0.85 s and 1.3 s. Legacy restores read and replace the whole table, so
// they stay proportional to it.
package network
