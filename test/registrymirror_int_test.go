//go:build integration

package test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/runtime/runtimetest"
)

const mirroredPod = `apiVersion: v1
kind: Pod
metadata: {name: mirrored}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: unreachable.invalid/mirrored/busybox:1
    imagePullPolicy: Always
    command: ["sleep", "3600"]
`

// TestIntegrationRegistryMirror runs a pod whose image names a registry
// that does not exist, with imagePullPolicy Always, on an agent whose
// registries file mirrors that registry to a registry on the bridge,
// listed after an endpoint where nothing listens.
func TestIntegrationRegistryMirror(t *testing.T) {
	s, ip := startClusterServer(t)
	host := serveRegistry(t, ip)
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/mirrored/busybox:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	conf := filepath.Join(t.TempDir(), "registries.yaml")
	yaml := fmt.Sprintf("mirrors:\n  unreachable.invalid:\n    endpoint: [\"http://%s:1\", \"http://%s\"]\n", ip, host)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	n1 := startAgent(t, s, ip, 1, "--registries-config", conf)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)

	s.mustMinik(strings.Replace(mirroredPod, "NODE", n1.name, 1), "apply", "-f", "-")
	t.Cleanup(func() {
		cs.CoreV1().Pods("default").Delete(context.Background(), "mirrored", metav1.DeleteOptions{})
	})
	waitPodRunning(t, cs, "default", "mirrored")
}

// TestIntegrationRegistryMirrorBadFile checks that an agent with a bad
// registries file stops at start, naming the file and the key.
func TestIntegrationRegistryMirrorBadFile(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.yaml")
	if err := os.WriteFile(conf, []byte("mirrors:\n  registry.k8s.io:\n    endpoints: [\"http://10.0.0.1:5000\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "agent", "--join", "https://127.0.0.1:1", "--token", "secret",
		"--data-dir", filepath.Join(dir, "data"), "--node-name", "bad", "--registries-config", conf).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("agent with a bad registries file: err %v, ctx %v; want it to exit with an error\n%s", err, ctx.Err(), out)
	}
	for _, s := range []string{conf, "endpoints"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("agent output %q does not name %q", out, s)
		}
	}
}

// serveRegistry serves an in-process registry on ip (the bridge, which
// the nodes reach) and returns its host:port.
func serveRegistry(t *testing.T, ip string) string {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
