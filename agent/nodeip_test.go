package agent

import (
	"net"
	"testing"
)

func TestRoutedNodeIP(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1:6443", "https://[::1]:6443", "::not a url", "https://"} {
		if got := routedNodeIP(u); got != "" {
			t.Errorf("routedNodeIP(%q) = %q, want \"\"", u, got)
		}
	}
	// A host address of this machine is routed from itself.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() == nil || n.IP.IsLoopback() {
			continue
		}
		if got := routedNodeIP("https://" + n.IP.String() + ":6443"); got != n.IP.String() {
			t.Errorf("routedNodeIP(own address %s) = %q, want it", n.IP, got)
		}
		return
	}
	t.Log("no IPv4 address but loopback: only the loopback case was checked")
}
