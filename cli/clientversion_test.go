package cli

import "testing"

func TestKubernetesVersion(t *testing.T) {
	tests := []struct {
		in              string
		v, major, minor string
		ok              bool
	}{
		{"v0.37.2", "v1.37.2", "1", "37", true},
		{"v0.38.0-alpha.1", "v1.38.0-alpha.1", "1", "38", true},
		{"(devel)", "", "", "", false},
		{"", "", "", "", false},
		{"v1.2.3", "", "", "", false},
		{"v0.", "", "", "", false},
	}
	for _, tc := range tests {
		v, major, minor, ok := kubernetesVersion(tc.in)
		if v != tc.v || major != tc.major || minor != tc.minor || ok != tc.ok {
			t.Errorf("kubernetesVersion(%q) = %q, %q, %q, %v, want %q, %q, %q, %v",
				tc.in, v, major, minor, ok, tc.v, tc.major, tc.minor, tc.ok)
		}
	}
}
