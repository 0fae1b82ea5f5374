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
// with iptables-restore --noflush, rewriting only the chains whose content
// changed. Large changes are split into several restores, ordered so that
// every jump has its target in between (see [DefaultMaxRestoreLines]).
// UDP conntrack entries to removed backends are deleted, so clients of a
// UDP service (DNS) move on to the new backends.
//
// Time from Sync to rules applied, 2-core VM under load from other work
// (BenchmarkProxierSync, services × 3 endpoints; first sync one run, the
// others the mean of three):
//
//	backend  services  first sync  full rewrite  one endpoint  one new service
//	nft      1,000     1.3 s       1.7 s         0.09 s        0.19 s
//	nft      5,000     6.2 s       9.7 s         0.27 s        0.85 s
//	legacy   1,000     1.2 s       0.8 s         0.19 s        0.22 s
//	legacy   5,000     7.0 s       8.2 s         1.0 s         1.3 s
//
// A full rewrite happens after a restart or a failed restore; a new
// service also rewrites MINIK-SERVICES, one rule per service port.
package network
