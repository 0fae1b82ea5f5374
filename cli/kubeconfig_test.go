package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveKubeconfig(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "admin.kubeconfig")

	tests := []struct {
		name     string
		env      map[string]string
		fallback string
		want     string
	}{
		{"kubeconfig env first", map[string]string{"KUBECONFIG": "/a", "MINIK_KUBECONFIG": "/b"}, existing, "/a"},
		{"kubeconfig env list", map[string]string{"KUBECONFIG": "/a:/c"}, existing, "/a:/c"},
		{"minik env next", map[string]string{"MINIK_KUBECONFIG": "/b"}, existing, "/b"},
		{"empty env is unset", map[string]string{"KUBECONFIG": "", "MINIK_KUBECONFIG": ""}, existing, existing},
		{"default data dir", nil, existing, existing},
		{"kubectl default", nil, missing, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveKubeconfig(func(k string) string { return tc.env[k] }, tc.fallback)
			if got != tc.want {
				t.Errorf("resolveKubeconfig(%v, %q) = %q, want %q", tc.env, tc.fallback, got, tc.want)
			}
		})
	}
}

func TestHasKubeconfigFlag(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"get", "pods"}, false},
		{[]string{"get", "--kubeconfig", "/k", "pods"}, true},
		{[]string{"get", "pods", "--kubeconfig=/k"}, true},
		{[]string{"exec", "p", "--", "cat", "--kubeconfig"}, false},
		{[]string{"get", "--kubeconfigx=/k"}, false},
	}
	for _, tc := range tests {
		if got := hasKubeconfigFlag(tc.args); got != tc.want {
			t.Errorf("hasKubeconfigFlag(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
