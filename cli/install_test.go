package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallPlanWrite(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role, url, token string
		wantEnv          []string
	}{
		{"server", "", "", nil},
		{"agent", "https://10.0.0.1:6443", "K10abc::server:s3cret", []string{"MINIK_URL=https://10.0.0.1:6443", "MINIK_TOKEN=K10abc::server:s3cret"}},
	} {
		t.Run(tc.role, func(t *testing.T) {
			root := t.TempDir()
			p, err := newInstallPlan(root, tc.role, tc.url, tc.token)
			if err != nil {
				t.Fatalf("newInstallPlan: %v", err)
			}
			if err := p.write(self, p.binary); err != nil {
				t.Fatalf("write: %v", err)
			}
			if target, err := os.Readlink(filepath.Join(root, binDir, "kubectl")); err != nil || target != "minik" {
				t.Errorf("kubectl link = %q, %v; want minik", target, err)
			}
			st, err := os.Stat(p.envFile)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("env file %s: %v, %v; want mode 0600", p.envFile, st, err)
			}
			env, _ := os.ReadFile(p.envFile)
			for _, w := range tc.wantEnv {
				if !strings.Contains(string(env), w+"\n") {
					t.Errorf("env file = %q, want the line %q", env, w)
				}
			}
			unit, _ := os.ReadFile(p.unit)
			if want := "ExecStart=" + p.binary + " " + tc.role + "\n"; !strings.Contains(string(unit), want) {
				t.Errorf("unit = %q, want %q", unit, want)
			}
			if _, err := exec.LookPath("systemd-analyze"); err != nil {
				t.Fatalf("systemd-analyze is needed to verify the unit (scripts/setup.sh installs systemd): %v", err)
			}
			out, err := exec.Command("systemd-analyze", "verify", p.unit).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze verify %s: %v\n%s", p.unit, err, out)
			}
		})
	}
}

func TestInstallPlanRefused(t *testing.T) {
	for _, tc := range []struct{ role, url, token string }{
		{"agent", "", "t"},
		{"agent", "https://x:6443", ""},
		{"worker", "", ""},
	} {
		if _, err := newInstallPlan(t.TempDir(), tc.role, tc.url, tc.token); err == nil {
			t.Errorf("newInstallPlan(%q, %q, %q) succeeded, want an error", tc.role, tc.url, tc.token)
		}
	}
}

func TestLinkKubectlKeepsAnother(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "kubectl")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := linkKubectl(other); err != nil {
		t.Fatalf("linkKubectl: %v", err)
	}
	if _, err := os.Readlink(other); err == nil {
		t.Errorf("linkKubectl replaced an existing kubectl with a link")
	}
}
