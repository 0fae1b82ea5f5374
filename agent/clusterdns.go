package agent

import (
	"fmt"
	"net/netip"

	"github.com/minik-dev/minik/agent/servicenet"
	"github.com/minik-dev/minik/internal/defaults"
)

// DefaultClusterDNS is the cluster DNS address pods are given: the tenth
// address of the default service CIDR.
var DefaultClusterDNS = netip.MustParseAddr(defaults.ClusterDNS)

// clusterDNS parses cfg.ClusterDNS, DefaultClusterDNS when empty.
func (cfg Config) clusterDNS() (netip.Addr, error) {
	if cfg.ClusterDNS == "" {
		return DefaultClusterDNS, nil
	}
	ip, err := netip.ParseAddr(cfg.ClusterDNS)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("cluster DNS %q must be an IPv4 address", cfg.ClusterDNS)
	}
	return ip, nil
}

// DefaultClusterDomain is the DNS domain of services and pods.
const DefaultClusterDomain = servicenet.DefaultClusterDomain
