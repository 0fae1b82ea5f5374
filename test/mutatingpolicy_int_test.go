//go:build integration

package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// mutatingPolicyManifest labels the pods created in namespace NS with
// the owner its ConfigMap parameter names (ApplyConfiguration), and gives
// their first container that owner as OWNER (JSONPatch).
const mutatingPolicyManifest = `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: owner-label
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}
  variables:
  - {name: owner, expression: params.data.owner}
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{metadata: Object.metadata{labels: {"owner": variables.owner}}}'
  - patchType: JSONPatch
    jsonPatch:
      expression: '[JSONPatch{op: "add", path: "/spec/containers/0/env", value: [{"name": "OWNER", "value": variables.owner}]}]'
  reinvocationPolicy: Never
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: owner-label
spec:
  policyName: owner-label
  paramRef: {name: owners, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: NS}
`

// TestIntegrationMutatingAdmissionPolicy drives mutating admission
// policies with kubectl against the built server: created, listed with
// their columns, refused with the field named when an expression does
// not compile, and applied to the pods created afterwards.
func TestIntegrationMutatingAdmissionPolicy(t *testing.T) {
	s := startServer(t)
	argv := kubectlCommands(t, s)["bundled"]
	const ns = "map-e2e"
	must := func(stdin, want string, args ...string) string {
		t.Helper()
		out, code := runKubectl(t, s, argv, stdin, args...)
		if code != 0 {
			t.Fatalf("kubectl %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("kubectl %s output:\n%s\nwant it to contain %q", strings.Join(args, " "), out, want)
		}
		return out
	}
	must("", "namespace/"+ns+" created", "create", "namespace", ns)
	must("", "configmap/owners created", "-n", ns, "create", "configmap", "owners", "--from-literal=owner=team-a")
	must(strings.ReplaceAll(mutatingPolicyManifest, "NS", ns), "mutatingadmissionpolicybinding.admissionregistration.k8s.io/owner-label created", "apply", "-f", "-")
	out := must("", "owner-label", "get", "mutatingadmissionpolicies")
	if !strings.Contains(out, "MUTATIONS") || !strings.Contains(out, "v1/ConfigMap") {
		t.Errorf("get mutatingadmissionpolicies columns:\n%s", out)
	}
	must("", "owner-label", "get", "mutatingadmissionpolicybindings")

	bad := strings.Replace(strings.ReplaceAll(mutatingPolicyManifest, "NS", ns), `{"owner": variables.owner}}}`, `{"owner": }}}`, 1)
	bad = strings.Replace(bad, "name: owner-label", "name: broken", 1)
	out, code := runKubectl(t, s, argv, bad, "apply", "-f", "-")
	if code == 0 || !strings.Contains(out, "spec.mutations[0].applyConfiguration.expression") {
		t.Errorf("apply with an expression that does not compile: exit %d\n%s\nwant a refusal naming spec.mutations[0].applyConfiguration.expression", code, out)
	}

	// The policy comes into force once the server's watch has it: until
	// the label shows, pods may be created unmutated.
	try := 0
	eventually(t, 30*time.Second, "the policy's label", func() error {
		try++
		pod := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: web-%d}\nspec:\n  containers: [{name: main, image: busybox:1.36}]\n", try)
		out := must(pod, "", "-n", ns, "create", "-f", "-", "-o", "jsonpath={.metadata.labels.owner} {.spec.containers[0].env[0].value}")
		if out != "team-a team-a" {
			return fmt.Errorf("pod web-%d has owner label and env %q", try, out)
		}
		return nil
	})
	stored := must("", "team-a", "-n", ns, "get", "pod", fmt.Sprintf("web-%d", try), "-o", "jsonpath={.metadata.labels.owner}")
	if stored != "team-a" {
		t.Errorf("stored pod's owner label = %q, want team-a", stored)
	}
}
