//go:build integration

package test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const rcManifest = `apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 2
  selector: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: busybox:1.36
        command: ["sleep", "3600"]
`

// kubectlCommands are the kubectl binaries to check: the one bundled in
// minik (the kubectl 1.37 library), and a kubectl on PATH if present.
func kubectlCommands(t *testing.T, s *serverProc) map[string][]string {
	cmds := map[string][]string{"bundled": {s.bin, "kubectl"}}
	if p, err := exec.LookPath("kubectl"); err == nil {
		cmds["path"] = []string{p}
	}
	return cmds
}

func runKubectl(t *testing.T, s *serverProc, argv []string, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], append([]string{"--kubeconfig", s.kubeconfig()}, args...)...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return string(out), 0
}

// TestIntegrationKubectl drives the verbs users run with kubectl.
func TestIntegrationKubectl(t *testing.T) {
	s := startServer(t)
	for name, argv := range kubectlCommands(t, s) {
		t.Run(name, func(t *testing.T) {
			ns := "kc-" + name
			must := func(stdin string, want string, args ...string) string {
				t.Helper()
				out, code := runKubectl(t, s, argv, stdin, args...)
				if code != 0 {
					t.Fatalf("kubectl %s: exit %d\n%s", strings.Join(args, " "), code, out)
				}
				if !strings.Contains(out, want) {
					t.Errorf("kubectl %s output:\n%s\nwant it to contain %q", strings.Join(args, " "), out, want)
				}
				return out
			}
			must("", "namespace/"+ns+" created", "create", "namespace", ns)
			must(rcManifest, "replicationcontroller/web created", "-n", ns, "create", "-f", "-")
			must(podManifest, "pod/hello created", "-n", ns, "apply", "-f", "-")
			changed := strings.Replace(podManifest, "app: hello", "app: hello, tier: front", 1)
			must(changed, "pod/hello configured", "-n", ns, "apply", "-f", "-")
			must("", "front", "-n", ns, "get", "pod", "hello", "-o", "jsonpath={.metadata.labels.tier}")
			out := must("", "NAME", "-n", ns, "get", "pods")
			if !strings.Contains(out, "READY") || !strings.Contains(out, "STATUS") || !strings.Contains(out, "hello") {
				t.Errorf("get pods columns:\n%s", out)
			}
			must("", "DESIRED", "-n", ns, "get", "rc", "-o", "wide")
			must("", "pod/hello labeled", "-n", ns, "label", "pod", "hello", "owner=me")
			must("", "pod/hello patched", "-n", ns, "patch", "pod", "hello", "-p", `{"metadata":{"annotations":{"a":"b"}}}`)
			must("", "replicationcontroller/web scaled", "-n", ns, "scale", "rc", "web", "--replicas=5")
			must("", "5", "-n", ns, "get", "rc", "web", "-o", "jsonpath={.spec.replicas}")
			replaced := strings.Replace(rcManifest, "replicas: 2", "replicas: 3", 1)
			must(replaced, "replicationcontroller/web replaced", "-n", ns, "replace", "-f", "-")
			must("", "Name:", "-n", ns, "describe", "pod", "hello")
			must("", "Replicas:", "-n", ns, "describe", "rc", "web")

			bad := strings.Replace(podManifest, "name: main", "name: main\n    bogusField: 1", 1)
			bad = strings.Replace(bad, "name: hello", "name: hello2", 1)
			out, code := runKubectl(t, s, argv, bad, "-n", ns, "apply", "-f", "-")
			if code == 0 || !strings.Contains(out, "bogusField") {
				t.Errorf("apply with an unknown field: exit %d\n%s\nwant a refusal naming bogusField", code, out)
			}

			// get -w prints the change made while it runs.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "--kubeconfig", s.kubeconfig(), "-n", ns, "get", "pods", "-w")...)
			pr, pw := io.Pipe()
			cmd.Stdout = pw
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatalf("get -w: %v", err)
			}
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			waitLine := func(want string) {
				t.Helper()
				for {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatalf("get -w ended before printing %q", want)
						}
						if strings.Contains(l, want) {
							return
						}
					case <-ctx.Done():
						t.Fatalf("get -w did not print %q", want)
					}
				}
			}
			waitLine("hello")
			must(strings.Replace(podManifest, "name: hello", "name: late", 1), "pod/late created", "-n", ns, "apply", "-f", "-")
			waitLine("late")
			cmd.Process.Kill()
			cmd.Wait()
			pw.Close()

			must("", `pod "hello" deleted`, "-n", ns, "delete", "pod", "hello")
			must("", `replicationcontroller "web" deleted`, "-n", ns, "delete", "rc", "web")
			must("", "No resources found", "-n", ns, "get", "rc")
		})
	}
}
