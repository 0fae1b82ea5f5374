package network

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func TestConfList(t *testing.T) {
	c, err := NewCNI(Config{
		PodCIDR: netip.MustParsePrefix("10.42.1.0/24"),
		DataDir: "/var/lib/minik/agent/cni",
		MTU:     1450,
	})
	if err != nil {
		t.Fatalf("NewCNI: %v", err)
	}
	golden(t, "conflist.json", append(c.ConfList(), '\n'))
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name, podCIDR, wantCluster string
	}{
		{"inside default cluster CIDR", "10.42.7.0/24", "10.42.0.0/16"},
		{"unmasked", "10.42.7.9/24", "10.42.0.0/16"},
		{"outside default cluster CIDR", "192.168.5.0/24", "192.168.5.0/24"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{PodCIDR: netip.MustParsePrefix(tc.podCIDR), DataDir: "/tmp/x", MTU: 1500}
			if err := cfg.complete(); err != nil {
				t.Fatalf("complete: %v", err)
			}
			if got := cfg.ClusterCIDR.String(); got != tc.wantCluster {
				t.Errorf("ClusterCIDR = %s, want %s", got, tc.wantCluster)
			}
			if cfg.BridgeName != DefaultBridgeName || cfg.NetworkName != DefaultNetworkName {
				t.Errorf("names = %q, %q; want defaults", cfg.BridgeName, cfg.NetworkName)
			}
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no podCIDR", Config{DataDir: "/tmp/x"}},
		{"IPv6 podCIDR", Config{PodCIDR: netip.MustParsePrefix("fd00::/64"), DataDir: "/tmp/x"}},
		{"podCIDR too small", Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/31"), DataDir: "/tmp/x"}},
		{"no data dir", Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/24")}},
		{"long bridge name", Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/24"), DataDir: "/tmp/x",
			BridgeName: "a-very-long-bridge"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewCNI(tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("NewCNI(%+v) err = %v, want ErrInvalidConfig", tc.cfg, err)
			}
		})
	}
}

func TestOwnedChain(t *testing.T) {
	tests := map[string]bool{
		"MINIK-SERVICES":             true,
		"MINIK-SVC-ABCDEFGHIJKLMNOP": true,
		"MINIK-SEP-ABCDEFGHIJKLMNOP": true,
		"MINIK-POSTROUTING":          true,
		"MINIK-MASQ-minik0":          false, // the CNI's, not the proxy's
		"CNI-HOSTPORT-DNAT":          false,
		"POSTROUTING":                false,
	}
	for name, want := range tests {
		if got := ownedChain(name); got != want {
			t.Errorf("ownedChain(%q) = %v, want %v", name, got, want)
		}
	}
}
