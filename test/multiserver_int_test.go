//go:build integration

package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/store/storetest"
)

// failoverDeadline is how soon after the leader's SIGKILL a deleted pod
// must be replaced, bound and Running again through a surviving server.
const failoverDeadline = 15 * time.Second

const haRC = `apiVersion: v1
kind: ReplicationController
metadata: {name: ha}
spec:
  replicas: 2
  selector: {app: ha}
  template:
    metadata:
      labels: {app: ha}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        imagePullPolicy: Never
        command: ["sleep", "3600"]
`

// startHAServer starts a server on the shared etcd, reachable from the
// node namespaces at ip, joining the cluster of first unless it is nil.
func startHAServer(t *testing.T, etcd, ip string, first *serverProc, extra ...string) *serverProc {
	t.Helper()
	s := &serverProc{t: t, bin: binary(t), dataDir: t.TempDir(), port: freePort(t)}
	s.args = append([]string{"--datastore-endpoint", etcd, "--advertise-address", ip, "--tls-san", ip}, extra...)
	if first != nil {
		s.args = append(s.args, "--server", fmt.Sprintf("https://%s:%d", ip, first.port), "--token", readToken(t, first))
	}
	s.startWith("0.0.0.0")
	t.Cleanup(s.kill)
	return s
}

func readToken(t *testing.T, s *serverProc) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.dataDir, "token"))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return strings.TrimSpace(string(data))
}

// leaderMetric returns the server's minik_server_leader value, or -1 when
// it cannot be read.
func leaderMetric(s *serverProc) int {
	token, err := os.ReadFile(filepath.Join(s.dataDir, "tls", "admin.token"))
	if err != nil {
		return -1
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", s.url()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		switch line {
		case "minik_server_leader 1":
			return 1
		case "minik_server_leader 0":
			return 0
		}
	}
	return -1
}

// leaders returns the live servers that say they lead.
func leaders(servers ...*serverProc) []int {
	var out []int
	for i, s := range servers {
		if s.cmd != nil && leaderMetric(s) == 1 {
			out = append(out, i)
		}
	}
	return out
}

// TestIntegrationMultiServer runs three servers on a three-member etcd
// cluster with one real agent: any server serves the API and its watches,
// one leads and hears the node through another, a SIGKILLed leader is
// replaced in time, logs and exec reach the node through any server, the
// agent fails over with its pods running when its server is SIGKILLed,
// and writes survive the loss of the etcd leader.
func TestIntegrationMultiServer(t *testing.T) {
	requireRoot(t)
	ec := storetest.StartEtcdCluster(t, 3)
	etcd := strings.Join(ec.Endpoints, ",")
	ip := hostBridge(t)
	grace := []string{"--node-monitor-grace-period", "10s"}
	a := startHAServer(t, etcd, ip, nil, grace...)
	eventually(t, 20*time.Second, "server A leads", func() error {
		if leaderMetric(a) != 1 {
			return fmt.Errorf("minik_server_leader of A is not 1")
		}
		return nil
	})
	b := startHAServer(t, etcd, ip, a, grace...)
	c := startHAServer(t, etcd, ip, a, grace...)
	for _, s := range []*serverProc{b, c} {
		if !bytes.Equal(mustRead(t, filepath.Join(s.dataDir, "tls", "ca.crt")), mustRead(t, filepath.Join(a.dataDir, "tls", "ca.crt"))) {
			t.Fatalf("a joined server has another CA than the first")
		}
		if readToken(t, s) != readToken(t, a) {
			t.Fatalf("a joined server has another join token than the first")
		}
	}
	if got := leaders(a, b, c); len(got) != 1 || got[0] != 0 {
		t.Fatalf("leaders = %v, want [0] (server A only)", got)
	}
	csB, csC := clientFor(t, b), clientFor(t, c)

	// The agent joins through B; A leads.
	n1 := startAgent(t, b, ip, 1, "--heartbeat-interval", "1s")
	waitNodeReady(t, csB, n1.name)
	eventually(t, 20*time.Second, "the agent learns every server", func() error {
		data, _ := os.ReadFile(filepath.Join(n1.dataDir, "servers"))
		for _, s := range []*serverProc{a, b, c} {
			if !strings.Contains(string(data), fmt.Sprintf("%s:%d", ip, s.port)) {
				return fmt.Errorf("kept server list %q lacks %s:%d", data, ip, s.port)
			}
		}
		return nil
	})
	// The leader hears the node's heartbeats through B: past the grace
	// period the node is still Ready.
	expectReadySince(t, csC, n1.name, time.Now(), 12*time.Second)

	// An RC created through A is visible through C and watched through B.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := csB.CoreV1().ReplicationControllers("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch through B: %v", err)
	}
	defer w.Stop()
	a.mustMinik(haRC, "apply", "-f", "-")
	select {
	case ev := <-w.ResultChan():
		rc, ok := ev.Object.(*corev1.ReplicationController)
		if ev.Type != watch.Added || !ok || rc.Name != "ha" {
			t.Fatalf("watch through B: first event %s %T, want ADDED rc ha", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("watch through B saw no event for the RC created through A")
	}
	if _, err := csC.CoreV1().ReplicationControllers("default").Get(ctx, "ha", metav1.GetOptions{}); err != nil {
		t.Fatalf("RC created through A, read through C: %v", err)
	}
	pods := haPods(t, csB, 2, 90*time.Second)
	survivor, victim := pods[0], pods[1]

	// SIGKILL the leader and delete a pod through a surviving server.
	killed := time.Now()
	a.kill()
	tookOver := make(chan time.Duration, 1)
	go func() {
		for time.Since(killed) < time.Minute {
			if len(leaders(b, c)) == 1 {
				tookOver <- time.Since(killed)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if err := csB.CoreV1().Pods("default").Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting pod %s through B: %v", victim.Name, err)
	}
	var replacement string
	eventually(t, failoverDeadline-time.Since(killed), "the deleted pod replaced, bound and Running", func() error {
		list, err := csB.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=ha"})
		if err != nil {
			return err
		}
		for _, p := range list.Items {
			if p.Name != survivor.Name && p.Name != victim.Name && p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
				replacement = p.Name
				return nil
			}
		}
		return fmt.Errorf("%d pods, none a Running replacement", len(list.Items))
	})
	t.Logf("replacement %s Running %v after the leader's SIGKILL", replacement, time.Since(killed).Round(100*time.Millisecond))
	select {
	case d := <-tookOver:
		t.Logf("a new leader %v after the SIGKILL", d.Round(100*time.Millisecond))
	default:
	}
	if got := leaders(b, c); len(got) != 1 {
		t.Errorf("leaders among the survivors = %v, want exactly one", got)
	}

	// logs and exec work through either survivor: C, which the node is
	// not connected to, forwards them to B.
	for i, s := range []*serverProc{b, c} {
		want := fmt.Sprintf("through-server-%d", i)
		if out := strings.TrimSpace(s.mustMinik("", "exec", replacement, "--", "echo", want)); out != want {
			t.Errorf("exec through server %d = %q, want %q", i, out, want)
		}
		if out, code := s.minik("", "logs", replacement); code != 0 {
			t.Errorf("logs through server %d: exit %d: %s", i, code, out)
		}
	}

	// SIGKILL B, the agent's server: the agent fails over to C, its pods
	// keep running and the node stays Ready.
	lost := time.Now()
	b.kill()
	eventually(t, 30*time.Second, "the agent connected to another server", func() error {
		if _, ok := logTime(n1.log.String(), "connected to another server"); !ok {
			return fmt.Errorf("not in the agent's log")
		}
		return nil
	})
	at, _ := logTime(n1.log.String(), "connected to another server")
	t.Logf("the agent connected to another server %v after its server's SIGKILL", at.Sub(lost).Round(100*time.Millisecond))
	eventually(t, 20*time.Second, "C leads", func() error {
		if leaderMetric(c) != 1 {
			return fmt.Errorf("minik_server_leader of C is not 1")
		}
		return nil
	})
	expectReadySince(t, csC, n1.name, killed, 12*time.Second)
	for _, before := range []corev1.Pod{survivor} {
		p, err := csC.CoreV1().Pods("default").Get(ctx, before.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s: %v", before.Name, err)
		}
		if p.UID != before.UID || p.Status.Phase != corev1.PodRunning || restarts(p) != restarts(&before) {
			t.Errorf("pod %s after fail-over: uid %s phase %s restarts %d; before: uid %s restarts %d",
				p.Name, p.UID, p.Status.Phase, restarts(p), before.UID, restarts(&before))
		}
	}
	if out := strings.TrimSpace(c.mustMinik("", "exec", survivor.Name, "--", "echo", "still-here")); out != "still-here" {
		t.Errorf("exec through C after the fail-over = %q", out)
	}

	// One etcd member down: writes are still acknowledged, and each
	// acknowledged write reads back through another server.
	victimMember := etcdLeader(t, ec.Endpoints)
	ec.Kill(victimMember)
	acked := writeNamespaces(ctx, t, csC, 30)
	if len(acked) < 25 {
		t.Errorf("%d of 30 writes acknowledged with one etcd member down", len(acked))
	}
	for _, name := range acked {
		if _, err := csC.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("acknowledged namespace %s, read through C: %v", name, err)
		}
	}
	t.Logf("%d of 30 writes acknowledged with etcd member %d (the etcd leader) down, all readable", len(acked), victimMember)
}

// expectReadySince waits for d and then checks that node has been Ready
// since before since.
func expectReadySince(t *testing.T, cs *kubernetes.Clientset, node string, since time.Time, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	n, err := cs.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && (cond.Status != corev1.ConditionTrue || cond.LastTransitionTime.After(since)) {
			t.Errorf("node %s Ready=%s since %v, want Ready since before %v", n.Name, cond.Status, cond.LastTransitionTime, since)
		}
	}
}

// etcdLeader returns the index of the etcd member that leads.
func etcdLeader(t *testing.T, endpoints []string) int {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, ep := range endpoints {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			t.Fatalf("etcd status of %s: %v", ep, err)
		}
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatalf("no etcd member leads")
	return -1
}

// logTime returns the time of the first log line holding msg.
func logTime(log, msg string) (time.Time, bool) {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		return at, err == nil
	}
	return time.Time{}, false
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// haPods waits until the RC's n pods are Running and returns them.
func haPods(t *testing.T, cs *kubernetes.Clientset, n int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, timeout, fmt.Sprintf("%d pods of rc ha Running", n), func() error {
		list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=ha"})
		if err != nil {
			return err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		if len(pods) != n || len(list.Items) != n {
			return fmt.Errorf("%d Running of %d", len(pods), len(list.Items))
		}
		return nil
	})
	return pods
}

// writeNamespaces creates n namespaces, retrying each for a few seconds,
// and returns those whose creation was acknowledged.
func writeNamespaces(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, n int) []string {
	var acked []string
	for i := range n {
		name := fmt.Sprintf("ha-write-%d", i)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if err == nil || apierrors.IsAlreadyExists(err) {
				acked = append(acked, name)
				break
			}
			if time.Now().After(deadline) {
				t.Logf("namespace %s not acknowledged: %v", name, err)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return acked
}

// TestIntegrationServersRaceToInitialise starts two servers at once on an
// empty etcd with one token: they end with one CA. A third with a wrong
// token is refused with a message saying so.
func TestIntegrationServersRaceToInitialise(t *testing.T) {
	requireRoot(t)
	etcd := storetest.StartEtcd(t)
	const secret = "0123456789abcdef0123456789abcdef"
	servers := make([]*serverProc, 2)
	var wg sync.WaitGroup
	for i := range servers {
		servers[i] = &serverProc{t: t, bin: binary(t), dataDir: t.TempDir(), port: freePort(t),
			args: []string{"--datastore-endpoint", etcd, "--token", secret}}
		t.Cleanup(servers[i].kill)
	}
	for _, s := range servers {
		wg.Go(func() { s.start() })
	}
	wg.Wait()
	ca0 := mustRead(t, filepath.Join(servers[0].dataDir, "tls", "ca.crt"))
	ca1 := mustRead(t, filepath.Join(servers[1].dataDir, "tls", "ca.crt"))
	if !bytes.Equal(ca0, ca1) {
		t.Errorf("two servers racing to initialise ended with two CAs")
	}
	if readToken(t, servers[0]) != readToken(t, servers[1]) {
		t.Errorf("tokens differ: %q, %q", readToken(t, servers[0]), readToken(t, servers[1]))
	}
	eventually(t, 20*time.Second, "exactly one leader", func() error {
		if got := leaders(servers...); len(got) != 1 {
			return fmt.Errorf("leaders = %v", got)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary(t), "server", "--disable-agent", "--data-dir", t.TempDir(),
		"--https-listen-port", fmt.Sprint(freePort(t)), "--bind-address", "127.0.0.1", "--datastore-endpoint", etcd,
		"--server", servers[0].url(), "--token", "not-the-secret").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "wrong --token") {
		t.Errorf("server with a wrong token: err %v, output tail:\n%s", err, tail(string(out), 5))
	}
}
