package hollow

import (
	"net/netip"
	"testing"
)

func TestIPPool(t *testing.T) {
	p := newIPPool(netip.MustParsePrefix("10.42.3.0/29")) // hosts .1-.6; pods .2-.6
	var got []string
	for range 5 {
		got = append(got, p.allocate().String())
	}
	want := []string{"10.42.3.2", "10.42.3.3", "10.42.3.4", "10.42.3.5", "10.42.3.6"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocations = %v, want %v", got, want)
		}
	}
	if ip := p.allocate(); ip.IsValid() {
		t.Fatalf("allocate on a full pool = %v, want none", ip)
	}
	p.release(netip.MustParseAddr("10.42.3.4"))
	if ip := p.allocate(); ip.String() != "10.42.3.4" {
		t.Errorf("allocate after release = %v, want 10.42.3.4", ip)
	}
	for _, tc := range []struct {
		ip   string
		want bool
	}{{"10.42.3.4", false}, {"10.42.3.1", false}, {"10.42.3.7", false}, {"10.42.4.2", false}} {
		if got := p.reserve(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("reserve(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	p.release(netip.MustParseAddr("10.42.3.6"))
	if !p.reserve(netip.MustParseAddr("10.42.3.6")) {
		t.Errorf("reserve of a released address failed")
	}
}
