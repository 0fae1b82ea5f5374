package network

import (
	"context"
	"net/netip"
	"slices"
)

// StaleFlow identifies UDP conntrack entries that still carry a service's
// traffic to a backend that is gone. UDP has no end of connection, so a
// client that keeps sending (a resolver to a DNS service, say) would reach
// the old backend for as long as it keeps the entry alive.
type StaleFlow struct {
	// Service is the address clients sent to. For a NodePort the address
	// is zero (any node address) and the port is the node port.
	Service netip.AddrPort
	// Backend is the gone backend's address.
	Backend netip.Addr
}

// ConntrackCleaner is implemented by executors that can delete conntrack
// entries. A [Proxier] whose executor implements it deletes the UDP flows
// to removed backends after each sync.
type ConntrackCleaner interface {
	// DeleteStaleFlows deletes the UDP entries matching flows; missing
	// entries are not an error.
	DeleteStaleFlows(ctx context.Context, flows []StaleFlow) error
}

// staleFlows returns the UDP flows to backends in prev that are gone from
// ports (its own service ports or their backends), and the UDP ports of
// ports indexed for the next call.
func staleFlows(prev map[string]svcPort, ports []svcPort) ([]StaleFlow, map[string]svcPort) {
	next := map[string]svcPort{}
	for _, sp := range ports {
		if sp.proto == "udp" {
			next[sp.svcChain] = sp
		}
	}
	var flows []StaleFlow
	for id, old := range prev {
		cur := next[id]
		for _, b := range old.backends {
			if cur.clusterIP == old.clusterIP && slices.Contains(cur.backends, b) {
				continue
			}
			flows = append(flows, StaleFlow{Service: netip.AddrPortFrom(old.clusterIP, old.port), Backend: b.Addr()})
			if old.nodePort != 0 {
				flows = append(flows, StaleFlow{Service: netip.AddrPortFrom(netip.Addr{}, old.nodePort), Backend: b.Addr()})
			}
		}
	}
	slices.SortFunc(flows, func(a, b StaleFlow) int {
		if c := a.Service.Compare(b.Service); c != 0 {
			return c
		}
		return a.Backend.Compare(b.Backend)
	})
	return slices.Compact(flows), next
}
