//go:build integration

package test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const podManifest = `apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: {app: hello}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
`

const invalidManifest = `apiVersion: v1
kind: Pod
metadata:
  name: broken
spec:
  containers:
  - name: main
`

func clientFor(t testing.TB, s *serverProc) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestIntegrationFoundation walks through the control plane as a user
// would: apply, read back, a refused manifest, 401, a watch from a
// resourceVersion, then SIGKILL and restart with nothing lost.
func TestIntegrationFoundation(t *testing.T) {
	s := startServer(t)
	out := s.mustMinik(podManifest, "apply", "-f", "-")
	if !strings.Contains(out, "pod/hello created") {
		t.Errorf("apply output %q, want pod/hello created", out)
	}
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(s.mustMinik("", "get", "pod", "hello", "-o", "json")), &pod); err != nil {
		t.Fatalf("get -o json: %v", err)
	}
	if pod.Name != "hello" || pod.Spec.Containers[0].Image != "busybox:1.36" || pod.UID == "" {
		t.Errorf("read back %s image %q uid %q", pod.Name, pod.Spec.Containers[0].Image, pod.UID)
	}

	out, code := s.minik(invalidManifest, "apply", "-f", "-")
	if code == 0 || !strings.Contains(out, "spec.containers[0].image") {
		t.Errorf("invalid manifest: exit %d output %q, want non-zero naming spec.containers[0].image", code, out)
	}

	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := insecure.Get(s.url() + "/api/v1/namespaces/default/pods")
	if err != nil {
		t.Fatalf("GET without credentials: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET without credentials = %d, want 401", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := clientFor(t, s)
	pods := cs.CoreV1().Pods("default")
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: pod.ResourceVersion})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if _, err := pods.Patch(ctx, "hello", types.MergePatchType, []byte(`{"metadata":{"labels":{"v":"2"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	select {
	case ev := <-w.ResultChan():
		if p, ok := ev.Object.(*corev1.Pod); !ok || ev.Type != "MODIFIED" || p.Labels["v"] != "2" {
			t.Errorf("watch event %s %T, want MODIFIED hello with v=2", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch event")
	}
	w.Stop()
	before, err := pods.Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	token, _ := os.ReadFile(s.dataDir + "/token")

	s.kill()
	s.start()
	after, err := clientFor(t, s).CoreV1().Pods("default").Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	if after.UID != before.UID || after.ResourceVersion != before.ResourceVersion || after.Labels["v"] != "2" {
		t.Errorf("after restart uid %s rv %s labels %v, want %s %s v=2", after.UID, after.ResourceVersion, after.Labels, before.UID, before.ResourceVersion)
	}
	token2, _ := os.ReadFile(s.dataDir + "/token")
	if string(token) != string(token2) || len(token) == 0 {
		t.Errorf("token changed across restart")
	}
	// Revisions keep growing after a restart.
	p2, err := clientFor(t, s).CoreV1().Pods("default").Patch(ctx, "hello", types.MergePatchType, []byte(`{"metadata":{"labels":{"v":"3"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("Patch after restart: %v", err)
	}
	if p2.ResourceVersion <= before.ResourceVersion && len(p2.ResourceVersion) <= len(before.ResourceVersion) {
		t.Errorf("resourceVersion after restart %s, want above %s", p2.ResourceVersion, before.ResourceVersion)
	}
}
