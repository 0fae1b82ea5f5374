package hollow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/agent/hollow"
	"github.com/minik-dev/minik/server"
	"github.com/minik-dev/minik/server/pki"
)

const testTimeout = 30 * time.Second

// cluster is a real minik server (controllers and scheduler, without its
// embedded agent) on a local port.
type cluster struct {
	url, token string
	client     kubernetes.Interface
	config     *rest.Config // the admin kubeconfig's, for clients of other content types
	kubeconfig string       // the admin kubeconfig's file
}

// startServer starts a server on a fresh data dir; each change, if any,
// is made to its Config first.
func startServer(t testing.TB, ctx context.Context, lg *slog.Logger, changes ...func(*server.Config)) *cluster {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	cfg := server.Config{
		DataDir: dir, HTTPSPort: port, BindAddress: "127.0.0.1", DisableAgent: true,
		ClusterCIDR: "10.64.0.0/10", ServiceCIDR: "10.43.0.0/16", Logger: lg,
		NodeRegistrationRate: -1, // thousands of nodes join at once
	}
	for _, change := range changes {
		change(&cfg)
	}
	go func() { done <- server.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("server.Run: %v", err)
			}
		case <-time.After(testTimeout):
			t.Errorf("server did not stop")
		}
	})
	c := &cluster{url: fmt.Sprintf("https://127.0.0.1:%d", port), kubeconfig: filepath.Join(dir, pki.KubeconfigFile)}
	poll(t, "server ready", func() bool {
		tok, err := os.ReadFile(filepath.Join(dir, pki.TokenFile))
		if err != nil {
			return false
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, pki.KubeconfigFile))
		if err != nil {
			return false
		}
		cfg.QPS, cfg.Burst = -1, -1
		c.token, c.client, c.config = strings.TrimSpace(string(tok)), kubernetes.NewForConfigOrDie(cfg), cfg
		_, err = c.client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	return c
}

// poll checks cond every 50 ms, failing the test after testTimeout.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runHollow(t testing.TB, ctx context.Context, cfg hollow.Config) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hollow.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hollow.Run: %v", err)
			}
		case <-time.After(testTimeout):
			t.Errorf("hollow nodes did not stop")
		}
	})
}

func TestHollowNodesRunScheduledPods(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	c := startServer(t, ctx, lg)
	runHollow(t, ctx, hollow.Config{
		Server: c.url, Token: c.token, Count: 3, NamePrefix: "hollow", DataDir: t.TempDir(),
		CPU: "2", Memory: "4Gi", HeartbeatInterval: time.Second, Logger: lg,
	})
	var nodes *corev1.NodeList
	// A Node gets its podCIDR from the server in a write of its own, after
	// the node created it.
	poll(t, "3 Ready hollow nodes with pod ranges", func() bool {
		var err error
		nodes, err = c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "minik.io/hollow=true"})
		return err == nil && len(nodes.Items) == 3 && allReady(nodes.Items) && allHaveRanges(nodes.Items)
	})
	cidrs := map[string]netip.Prefix{}
	for _, n := range nodes.Items {
		cidrs[n.Name] = netip.MustParsePrefix(n.Spec.PodCIDR)
		if cpu := n.Status.Allocatable[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("2")) != 0 {
			t.Errorf("node %s allocatable cpu = %v, want 2", n.Name, cpu.String())
		}
	}

	// The server's own scheduler places the pods.
	for i := range 6 {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("600m")}}}}},
		}
		if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod: %v", err)
		}
	}
	poll(t, "6 pods Running and Ready", func() bool {
		pods, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 6 {
			return false
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
				return false
			}
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil || !cidrs[p.Spec.NodeName].Contains(ip) {
				t.Fatalf("pod %s on %s has podIP %q outside the node's podCIDR %v", p.Name, p.Spec.NodeName, p.Status.PodIP, cidrs[p.Spec.NodeName])
			}
		}
		return true
	})

	if err := c.client.CoreV1().Pods("default").Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	poll(t, "deleted pod removed after its node reports it terminated", func() bool {
		_, err := c.client.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
		return err != nil && strings.Contains(err.Error(), "not found")
	})
}

func TestHollowRefusedToken(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	c := startServer(t, ctx, lg)
	err := hollow.Run(ctx, hollow.Config{Server: c.url, Token: "wrong-secret", Count: 2, DataDir: t.TempDir(), Logger: lg})
	if !errors.Is(err, hollow.ErrTokenRefused) {
		t.Errorf("Run with a wrong token = %v, want ErrTokenRefused", err)
	}
}

func allReady(nodes []corev1.Node) bool {
	for _, n := range nodes {
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		}
		if !ready {
			return false
		}
	}
	return true
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func allHaveRanges(nodes []corev1.Node) bool {
	for _, n := range nodes {
		if n.Spec.PodCIDR == "" {
			return false
		}
	}
	return true
}
