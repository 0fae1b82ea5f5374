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
// Each service port has a MINIK-SVC chain choosing a backend at random, or
// by ClientIP session affinity (recent lists) first. Backends in the
// node's pod CIDR get a MINIK-SEP chain with the hairpin masquerade; the
// others are DNATed to from the service chain itself. Load balancer
// ingress IPs are served like the cluster IP, marked for masquerade like
// NodePorts.
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
// Time from Sync to rules applied, 2-core VM shared with other work
// (BenchmarkProxierSync, services × 3 endpoints, pod CIDR 10.42.0.0/24
// holding 256 of the backends; first sync one run, the others the mean of
// three; "empty" is an empty restore against the same tables, in the same
// run):
//
//	backend  services  first sync  full rewrite  one endpoint (restore)  one new service  empty
//	nft      1,000     0.56 s      0.75 s        44 ms (36 ms)           169 ms           4.6 ms
//	nft      5,000     3.6 s       3.4 s         70 ms (44 ms)           535 ms           3.0 ms
//	legacy   1,000     0.31 s      0.25 s        42 ms (37 ms)           72 ms            19 ms
//	legacy   5,000     2.1 s       1.8 s         287 ms (257 ms)         373 ms           77 ms
//
// A full rewrite happens after a restart or a failed restore; a new
// service also rewrites MINIK-SERVICES, one rule per service port. Before
// the proxier kept each port's rendering and inlined remote backends, one
// endpoint took 0.27 s (nft) and 1.0 s (legacy) at 5,000 services.
package network
