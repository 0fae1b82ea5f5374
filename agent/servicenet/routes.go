package servicenet

import (
	"log/slog"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/network"
)

// nodeRoutes returns a host-gw route to the podCIDR of every node but self,
// via its InternalIP. Nodes without both are skipped: they get a route
// once they report them.
func nodeRoutes(self string, nodes []*corev1.Node, lg *slog.Logger) []network.Route {
	var out []network.Route
	for _, n := range nodes {
		if n.Name == self || n.Spec.PodCIDR == "" {
			continue
		}
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil {
			lg.Warn("node with a bad podCIDR", "other", n.Name, "podCIDR", n.Spec.PodCIDR)
			continue
		}
		if ip, ok := internalIP(n); ok {
			out = append(out, network.Route{PodCIDR: cidr.Masked(), NodeIP: ip})
		}
	}
	return out
}

// remoteNodeIPs returns the IPv4 InternalIP of every node but self.
func remoteNodeIPs(self string, nodes []*corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		if ip, ok := internalIP(n); ok {
			out = append(out, ip)
		}
	}
	return out
}

// internalIP returns the node's first IPv4 InternalIP.
func internalIP(n *corev1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
