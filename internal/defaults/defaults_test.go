package defaults

import (
	"net/netip"
	"testing"
)

// ClusterDNS is the tenth address of ServiceCIDR, which the Service IP
// allocator keeps for it.
func TestClusterDNSIsTenthServiceAddress(t *testing.T) {
	p := netip.MustParsePrefix(ServiceCIDR)
	ip := p.Masked().Addr()
	for range 10 {
		ip = ip.Next()
	}
	if ip.String() != ClusterDNS {
		t.Errorf("tenth address of %s = %s, ClusterDNS = %s", ServiceCIDR, ip, ClusterDNS)
	}
}
