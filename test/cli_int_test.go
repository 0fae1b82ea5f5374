//go:build integration

package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const multiDoc = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: front, namespace: shop}
spec:
  selector: {app: front}
  ports: [{port: 80, targetPort: 8080}]
`

const eventJSON = `{"apiVersion":"v1","kind":"Event","metadata":{"name":"cart.1","namespace":"shop"},
"involvedObject":{"kind":"Pod","name":"cart","namespace":"shop","uid":"UID"},
"reason":"Pulled","message":"Container image already present on machine","type":"Normal",
"source":{"component":"minik-agent"}}`

// TestIntegrationCLI runs the bundled client verbs as a user would:
// directories of multi-document manifests, -A, -l, delete by label, and
// describe showing an object's events.
func TestIntegrationCLI(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	pod := strings.NewReplacer("name: hello", "name: cart", "app: hello", "app: cart").Replace(podManifest)
	pod = strings.Replace(pod, "metadata:\n", "metadata:\n  namespace: shop\n", 1)
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(multiDoc), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(pod), 0o644)
	out := s.mustMinik("", "apply", "-f", dir)
	for _, want := range []string{"namespace/shop created", "service/front created", "pod/cart created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply -f dir output lacks %q:\n%s", want, out)
		}
	}
	out = s.mustMinik("", "get", "svc", "-n", "shop")
	if !strings.Contains(out, "CLUSTER-IP") || !strings.Contains(out, "10.43.") {
		t.Errorf("get svc shows no cluster IP:\n%s", out)
	}
	out = s.mustMinik("", "get", "pods", "-A", "-l", "app=cart")
	if !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "shop") || !strings.Contains(out, "cart") {
		t.Errorf("get pods -A -l:\n%s", out)
	}
	out = s.mustMinik("", "get", "pods", "-n", "shop", "-o", "name")
	if strings.TrimSpace(out) != "pod/cart" {
		t.Errorf("get -o name = %q, want pod/cart", out)
	}
	uid := strings.TrimSpace(s.mustMinik("", "get", "pod", "cart", "-n", "shop", "-o", "jsonpath={.metadata.uid}"))
	s.mustMinik(strings.Replace(eventJSON, "UID", uid, 1), "create", "-f", "-")
	out = s.mustMinik("", "describe", "pod", "cart", "-n", "shop")
	if !strings.Contains(out, "Events:") || !strings.Contains(out, "Container image already present") {
		t.Errorf("describe lacks the pod's event:\n%s", out)
	}
	out = s.mustMinik("", "delete", "pods", "-n", "shop", "-l", "app=cart")
	if !strings.Contains(out, `pod "cart" deleted`) {
		t.Errorf("delete -l output:\n%s", out)
	}
	out, code := s.minik("", "get", "pod", "cart", "-n", "shop")
	if code == 0 || !strings.Contains(out, "NotFound") && !strings.Contains(out, "not found") {
		t.Errorf("get after delete: exit %d\n%s", code, out)
	}
	out = s.mustMinik("", "delete", "-f", dir, "--ignore-not-found")
	if !strings.Contains(out, `namespace "shop" deleted`) {
		t.Errorf("delete -f dir output:\n%s", out)
	}
}
