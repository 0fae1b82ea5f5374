//go:build integration

package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/agent"
	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// minikBinary returns MINIK_BINARY, or builds the binary.
func minikBinary(t *testing.T) string {
	if os.Getenv("MINIK_INTEGRATION") != "1" || os.Geteuid() != 0 {
		t.Skip("needs MINIK_INTEGRATION=1 and root")
	}
	if b := os.Getenv("MINIK_BINARY"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "minik")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a child process in its own process group.
type proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process group: SIGTERM, then SIGKILL.
func (p *proc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Errorf("pid %d ignored SIGTERM", p.cmd.Process.Pid)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last error: %v)", what, timeout, last)
}

func TestIntegrationServerRunsPodsOnEmbeddedAgent(t *testing.T) {
	bin := minikBinary(t)
	dir, err := os.MkdirTemp("", "mkit")
	if err != nil {
		t.Fatal(err)
	}
	node := "it-" + filepath.Base(dir)[4:]
	node = strings.ToLower(node)
	t.Cleanup(func() {
		cleanupNode(t, dir, node)
		// The embedded agent ran in the host namespace: take its service
		// rules, masquerade chains and routes away again.
		if out, err := exec.Command(bin, "agent", "--cleanup").CombinedOutput(); err != nil {
			t.Logf("agent --cleanup: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	})
	images := filepath.Join(dir, "agent", "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		t.Fatal(err)
	}
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runtimetest.WriteOCIArchive(images, runtimetest.BusyboxRef, img); err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(freePort(t))
	args := []string{"server", "--data-dir", dir, "--https-listen-port", port, "--bind-address", "127.0.0.1",
		"--node-name", node, "--heartbeat-interval", "1s"}
	srv := start(t, bin, args...)
	cs := clientFor(t, filepath.Join(dir, "admin.kubeconfig"), srv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	waitFor(t, "node Ready", 60*time.Second, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && nodeReady(n), err
	})
	one := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: node, TerminationGracePeriodSeconds: &one,
			Containers: []corev1.Container{{Name: "c", Image: runtimetest.BusyboxRef, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var running *corev1.Pod
	waitFor(t, "pod Running", 90*time.Second, func() (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "sleeper", metav1.GetOptions{})
		running = p
		return err == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", err
	})
	if ip, err := netip.ParseAddr(running.Status.PodIP); err != nil || !netip.MustParsePrefix("10.42.0.0/16").Contains(ip) {
		t.Errorf("pod IP %q, want one in 10.42.0.0/16", running.Status.PodIP)
	}
	started := running.Status.ContainerStatuses[0].State.Running.StartedAt

	// A server restart restarts no pod.
	srv.stop(t)
	srv = start(t, bin, args...)
	cs = clientFor(t, filepath.Join(dir, "admin.kubeconfig"), srv)
	waitFor(t, "node Ready after restart", 60*time.Second, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && nodeReady(n), err
	})
	time.Sleep(3 * time.Second) // let the agent resync
	p, err := cs.CoreV1().Pods("default").Get(ctx, "sleeper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cst := p.Status.ContainerStatuses
	if p.Status.Phase != corev1.PodRunning || len(cst) != 1 || cst[0].RestartCount != 0 ||
		cst[0].State.Running == nil || !cst[0].State.Running.StartedAt.Equal(&started) {
		t.Errorf("after a server restart: phase %s, container statuses %+v; want the same container still running", p.Status.Phase, cst)
	}

	// A wrong token is refused, and the agent says so.
	agentDir := t.TempDir()
	hash := strings.SplitN(strings.TrimPrefix(readFile(t, filepath.Join(dir, "token")), "K10"), "::", 2)[0]
	bad := start(t, bin, "agent", "--join", "https://127.0.0.1:"+port, "--token", "K10"+hash+"::server:wrong",
		"--data-dir", agentDir, "--node-name", "intruder", "--containerd-socket", filepath.Join(agentDir, "none.sock"))
	select {
	case err := <-bad.done:
		if err == nil {
			t.Errorf("minik agent with a wrong token exited 0")
		}
		if !strings.Contains(bad.out.String(), "refused the join token") {
			t.Errorf("minik agent with a wrong token said %q, want it to mention the refused join token", bad.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("minik agent with a wrong token still running after 30s; output:\n%s", bad.out.String())
	}
	if _, err := cs.CoreV1().Nodes().Get(ctx, "intruder", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Node intruder: Get = %v, want NotFound", err)
	}

	// Deleting the pod stops it on the node, which then lets it go.
	if err := cs.CoreV1().Pods("default").Delete(ctx, "sleeper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod removed", 60*time.Second, func() (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "sleeper", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	srv.stop(t)
}

func readFile(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// clientFor waits for the server's kubeconfig and API and returns a client.
func clientFor(t *testing.T, kubeconfig string, srv *proc) *kubernetes.Clientset {
	t.Helper()
	var cs *kubernetes.Clientset
	waitFor(t, "API ready", 60*time.Second, func() (bool, error) {
		select {
		case err := <-srv.done:
			t.Fatalf("server exited: %v\n%s", err, srv.out.String())
		default:
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return false, err
		}
		if cs, err = kubernetes.NewForConfig(cfg); err != nil {
			return false, err
		}
		_, err = cs.Discovery().ServerVersion()
		return err == nil, err
	})
	return cs
}

// cleanupNode removes what the embedded agent left: pods, images, the
// containerd namespace, the cgroup parent and the CNI bridge and chains.
func cleanupNode(t *testing.T, dir, node string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := runtime.StartContainerd(ctx, runtime.DaemonConfig{Dir: filepath.Join(dir, "agent", "containerd")})
	if err != nil {
		t.Logf("cleanup: containerd: %v", err)
		return
	}
	defer func() { cancel(); <-d.Done() }()
	cni, err := network.NewCNI(network.Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/24"), BridgeName: agent.BridgeName(node), DataDir: filepath.Join(dir, "agent", "cni")})
	rtCfg := runtime.Config{Address: d.Address(), DataDir: filepath.Join(dir, "agent"), Namespace: "minik-" + node, CgroupParent: "/minik-" + node}
	rt, rerr := runtime.New(ctx, rtCfg)
	if rerr != nil {
		t.Logf("cleanup: runtime: %v", rerr)
		return
	}
	defer rt.Close()
	pods, _ := rt.ListPods(ctx)
	for _, p := range pods {
		rt.RemovePod(ctx, p.UID)
	}
	rt.GC(ctx, func(string) bool { return false })
	nctx := namespaces.WithNamespace(ctx, rtCfg.Namespace)
	cl := rt.Client()
	imgs, _ := cl.ImageService().List(nctx)
	for _, img := range imgs {
		cl.ImageService().Delete(nctx, img.Name)
	}
	cl.NamespaceService().Delete(nctx, rtCfg.Namespace)
	rt.RemoveCgroupParent()
	if err == nil {
		cni.Cleanup(ctx)
	}
}
