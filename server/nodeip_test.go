package server

import (
	"net"
	"testing"
)

func TestEmbeddedNodeIP(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"node ip", Config{NodeIP: "10.1.2.3", BindAddress: "10.9.9.9", AdvertiseAddress: "192.0.2.1"}, "10.1.2.3"},
		{"bind address", Config{BindAddress: "10.9.9.9", AdvertiseAddress: "192.0.2.1"}, "10.9.9.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := embeddedNodeIP(tc.cfg); got != tc.want {
				t.Errorf("embeddedNodeIP(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
	// Without either, a host address, never the advertised one (which may
	// be a load balancer's).
	got := embeddedNodeIP(Config{BindAddress: "0.0.0.0", AdvertiseAddress: "192.0.2.1"})
	if ip := net.ParseIP(got); ip == nil || got == "192.0.2.1" {
		t.Errorf("embeddedNodeIP(no node ip) = %q, want a host address", got)
	}
}
