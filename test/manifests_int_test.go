//go:build integration

package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const manifestApp = `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  greeting: %s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: busybox
`

// TestIntegrationManifests drops a manifest into DATA/server/manifests of
// a running server, sees its objects appear, edits it, removes it and sees
// its objects deleted, then writes a broken file and finds the Warning
// event naming it.
func TestIntegrationManifests(t *testing.T) {
	s := startServer(t, "--manifests-interval", "500ms")
	dir := filepath.Join(s.dataDir, "server", "manifests")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("manifests dir %s after start: %v", dir, err)
	}
	write := func(file, content string) {
		t.Helper()
		// Written aside and renamed, as a careful editor does: the
		// server never reads half a file.
		tmp := filepath.Join(dir, "."+file+".tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
	}
	get := func(args ...string) (string, error) {
		out, code := s.minik("", append([]string{"get"}, args...)...)
		if code != 0 {
			return out, fmt.Errorf("minik get %s: exit %d: %s", strings.Join(args, " "), code, out)
		}
		return out, nil
	}
	gone := func(args ...string) func() error {
		return func() error {
			out, code := s.minik("", append([]string{"get"}, args...)...)
			if code == 0 || !strings.Contains(out, "not found") {
				return fmt.Errorf("minik get %s: exit %d: %s; want not found", strings.Join(args, " "), code, out)
			}
			return nil
		}
	}
	has := func(want string, args ...string) func() error {
		return func() error {
			out, err := get(args...)
			if err != nil {
				return err
			}
			if !strings.Contains(out, want) {
				return fmt.Errorf("minik get %s:\n%s\nwant %q", strings.Join(args, " "), out, want)
			}
			return nil
		}
	}

	write("app.yaml", fmt.Sprintf(manifestApp, "hello"))
	eventually(t, 30*time.Second, "configmap applied", has("greeting: hello", "configmap", "app-config", "-o", "yaml"))
	eventually(t, 30*time.Second, "deployment applied", has("minik.dev/manifest: app.yaml", "deployment", "app", "-o", "yaml"))
	eventually(t, 30*time.Second, "Applied event", has("applied 2 objects from app.yaml", "events", "-n", "kube-system"))

	// Edit: the ConfigMap changes and the Deployment leaves the file.
	write("app.yaml", strings.SplitN(fmt.Sprintf(manifestApp, "bonjour"), "---", 2)[0])
	eventually(t, 30*time.Second, "configmap edited", has("greeting: bonjour", "configmap", "app-config", "-o", "yaml"))
	eventually(t, 30*time.Second, "deployment dropped from the file deleted", gone("deployment", "app"))

	// Removal deletes what the file created, and its record.
	if err := os.Remove(filepath.Join(dir, "app.yaml")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "configmap of the removed file deleted", gone("configmap", "app-config"))
	eventually(t, 30*time.Second, "record of the removed file deleted", gone("configmap", "-n", "kube-system", "manifest-app.yaml"))

	// A broken file: a Warning event naming the file and the document.
	write("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: [\n")
	eventually(t, 30*time.Second, "ApplyFailed event", func() error {
		out, err := get("events", "-n", "kube-system")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "Warning") && strings.Contains(line, "ApplyFailed") && strings.Contains(line, "broken.yaml: document 2 (line 6)") {
				return nil
			}
		}
		return fmt.Errorf("no Warning ApplyFailed event about broken.yaml in:\n%s", out)
	})
	if err := gone("configmap", "fine")(); err != nil {
		t.Errorf("object of a file that does not parse: %v", err)
	}
	if !strings.Contains(s.log.String(), "manifest not applied") {
		t.Errorf("server log has no line about broken.yaml")
	}
}

// TestIntegrationManifestsDisabled: with --disable-manifests the server
// makes no manifests directory and applies nothing put there.
func TestIntegrationManifestsDisabled(t *testing.T) {
	s := startServer(t, "--disable-manifests", "--manifests-interval", "200ms")
	dir := filepath.Join(s.dataDir, "server", "manifests")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("manifests dir %s with --disable-manifests: %v, want none", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(fmt.Sprintf(manifestApp, "hello")), 0o600); err != nil {
		t.Fatal(err)
	}
	// Many times the interval: a server that read the directory would
	// have applied the file by then.
	time.Sleep(3 * time.Second)
	if out, code := s.minik("", "get", "configmap", "app-config"); code == 0 || !strings.Contains(out, "not found") {
		t.Errorf("configmap of a manifest with --disable-manifests: exit %d: %s; want not found", code, out)
	}
}
