//go:build integration

package test

import (
	"strings"
	"testing"
)

const applyConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: %s
`

// TestIntegrationServerSideApply applies one field from two field
// managers with kubectl: the second is refused with a conflict naming the
// field and the first manager, until --force-conflicts takes it over.
func TestIntegrationServerSideApply(t *testing.T) {
	s := startServer(t)
	for name, argv := range kubectlCommands(t, s) {
		t.Run(name, func(t *testing.T) {
			ns := "ssa-" + name
			run := func(stdin string, args ...string) (string, int) {
				t.Helper()
				return runKubectl(t, s, argv, stdin, append([]string{"-n", ns}, args...)...)
			}
			must := func(stdin, want string, args ...string) {
				t.Helper()
				out, code := run(stdin, args...)
				if code != 0 || !strings.Contains(out, want) {
					t.Fatalf("kubectl %s: exit %d\n%s\nwant success containing %q", strings.Join(args, " "), code, out, want)
				}
			}
			must("", "namespace/"+ns+" created", "create", "namespace", ns)
			t.Cleanup(func() { run("", "delete", "namespace", ns, "--wait=false") })
			blue := strings.Replace(applyConfigMap, "%s", "blue", 1)
			red := strings.Replace(applyConfigMap, "%s", "red", 1)

			must(blue, "configmap/settings serverside-applied", "apply", "--server-side", "--field-manager", "alice", "-f", "-")
			out, code := run(red, "apply", "--server-side", "--field-manager", "bob", "-f", "-")
			if code == 0 || !strings.Contains(out, "conflict") || !strings.Contains(out, `"alice"`) || !strings.Contains(out, ".data.color") {
				t.Fatalf("apply by bob: exit %d\n%s\nwant a conflict with alice over .data.color", code, out)
			}
			must("", "blue", "get", "configmap", "settings", "-o", "jsonpath={.data.color}")

			must(red, "configmap/settings serverside-applied", "apply", "--server-side", "--field-manager", "bob", "--force-conflicts", "-f", "-")
			must("", "red", "get", "configmap", "settings", "-o", "jsonpath={.data.color}")
			out, _ = run("", "get", "configmap", "settings", "--show-managed-fields", "-o",
				`jsonpath={.metadata.managedFields[?(@.operation=="Apply")].manager}`)
			if strings.TrimSpace(out) != "bob" {
				t.Errorf("Apply managers after the forced apply = %q, want bob alone", out)
			}
			must("", "List of containers belonging to the pod", "explain", "pods.spec.containers")
		})
	}
}
