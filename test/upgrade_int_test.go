//go:build integration

package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/store/storetest"
)

// previousRelease is the commit of the last published minik: the version
// whose data directories and etcd contents this one must take over.
const previousRelease = "27e06ff"

// binaryCache keeps the binaries built from earlier commits between runs.
const binaryCache = "/var/tmp/minik-test-cache"

// previousBinary returns the minik binary of previousRelease, built from
// the repository's history (and cached under binaryCache by commit). A
// clone without that commit fails the test: scripts/setup.sh fetches the
// history of a shallow clone.
func previousBinary(t *testing.T) string {
	t.Helper()
	root := strings.TrimSpace(run(t, "git", "rev-parse", "--show-toplevel"))
	out, err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", previousRelease+"^{commit}").Output()
	if err != nil {
		shallow, _ := exec.Command("git", "-C", root, "rev-parse", "--is-shallow-repository").Output()
		t.Fatalf("the repository at %s lacks commit %s, the previous release the upgrade is tested from (shallow clone: %s); "+
			"run `git fetch --unshallow` (scripts/setup.sh does)", root, previousRelease, strings.TrimSpace(string(shallow)))
	}
	commit := strings.TrimSpace(string(out))
	bin := filepath.Join(binaryCache, "minik-"+commit)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin
	}
	src := t.TempDir()
	cmd := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v\n%s", commit, err, out)
	}
	if err := os.MkdirAll(binaryCache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".tmp"
	build := exec.Command("go", "build", "-o", tmp, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", commit, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the previous release %s into %s", commit[:12], bin)
	return bin
}

// stop ends the server as an operator does before replacing its binary:
// SIGTERM, then SIGKILL if it has not exited within 30 s.
func (s *serverProc) stop() {
	s.t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("server did not exit within 30s of SIGTERM; log:\n%s", tail(s.log.String(), 40))
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	s.cmd = nil
}

// upgradeObjects are written by the previous release and read back by
// this one: one of each kind a user keeps, in their own namespace.
const upgradeObjects = `apiVersion: v1
kind: Namespace
metadata: {name: upgrade}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: upgrade, labels: {app: web}}
data: {greeting: hello, mode: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: upgrade}
stringData: {password: hunter2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: upgrade}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        imagePullPolicy: Never
        command: ["sleep", "3600"]
        envFrom: [{configMapRef: {name: settings}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: upgrade}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`

const upgradeCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.upgrade.example.com}
spec:
  group: upgrade.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
`

const upgradeWidget = `apiVersion: upgrade.example.com/v1
kind: Widget
metadata: {name: blue, namespace: upgrade}
spec: {size: 3, color: blue}
`

// upgradeRef names one object of upgradeObjects and which of its fields
// must read back unchanged.
type upgradeRef struct {
	gvr        schema.GroupVersionResource
	ns, name   string
	sameFields []string
}

var upgradeRefs = []upgradeRef{
	{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", "upgrade", []string{"metadata.labels"}},
	{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "upgrade", "settings", []string{"data", "metadata.labels"}},
	{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "upgrade", "creds", []string{"data", "type"}},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "upgrade", "web", []string{"spec"}},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "upgrade", "web", []string{"spec"}},
	{schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, "", "widgets.upgrade.example.com", []string{"spec"}},
	{schema.GroupVersionResource{Group: "upgrade.example.com", Version: "v1", Resource: "widgets"}, "upgrade", "blue", []string{"spec"}},
}

func dynamicFor(t testing.TB, s *serverProc) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	return dynamic.NewForConfigOrDie(cfg)
}

// readUpgradeObjects gets every object of upgradeRefs.
func readUpgradeObjects(t *testing.T, dc dynamic.Interface) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, r := range upgradeRefs {
		var ri dynamic.ResourceInterface = dc.Resource(r.gvr)
		if r.ns != "" {
			ri = dc.Resource(r.gvr).Namespace(r.ns)
		}
		var obj *unstructured.Unstructured
		eventually(t, 30*time.Second, fmt.Sprintf("%s %s/%s readable", r.gvr.Resource, r.ns, r.name), func() (err error) {
			obj, err = ri.Get(context.Background(), r.name, metav1.GetOptions{})
			return err
		})
		out = append(out, obj)
	}
	return out
}

// compareUpgradeObjects checks that what this version reads is what the
// previous one wrote: the same uid, the fields named in upgradeRefs alike,
// and a resourceVersion that did not go backwards.
func compareUpgradeObjects(t *testing.T, before, after []*unstructured.Unstructured) {
	t.Helper()
	for i, r := range upgradeRefs {
		b, a := before[i], after[i]
		what := fmt.Sprintf("%s %s/%s", r.gvr.Resource, r.ns, r.name)
		if a.GetUID() != b.GetUID() {
			t.Errorf("%s: uid %s after the upgrade, %s before", what, a.GetUID(), b.GetUID())
		}
		rvB, _ := strconv.ParseInt(b.GetResourceVersion(), 10, 64)
		rvA, _ := strconv.ParseInt(a.GetResourceVersion(), 10, 64)
		if rvA < rvB || rvB == 0 {
			t.Errorf("%s: resourceVersion %d after the upgrade, %d before", what, rvA, rvB)
		}
		for _, f := range r.sameFields {
			path := strings.Split(f, ".")
			vb, _, _ := unstructured.NestedFieldNoCopy(b.Object, path...)
			va, _, _ := unstructured.NestedFieldNoCopy(a.Object, path...)
			if diff := cmp.Diff(vb, va); diff != "" {
				t.Errorf("%s: %s changed across the upgrade (-before +after):\n%s", what, f, diff)
			}
		}
	}
}

// runningWebPods returns the Running pods of the Deployment web when
// there are exactly want of them, all ready.
func runningWebPods(cs *kubernetes.Clientset, want int) (map[string]string, error) {
	list, err := cs.CoreV1().Pods("upgrade").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	uids := map[string]string{}
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && isReady(&p) {
			uids[p.Name] = string(p.UID)
		}
	}
	if len(uids) != want || len(list.Items) != want {
		return nil, fmt.Errorf("%d Running and ready of %d pods, want %d", len(uids), len(list.Items), want)
	}
	return uids, nil
}

// waitLeaseRenewed waits until the node's Lease was renewed after since:
// the node's heartbeats reach the (new) control plane.
func waitLeaseRenewed(t *testing.T, cs *kubernetes.Clientset, node string, since time.Time) {
	t.Helper()
	eventually(t, 90*time.Second, "node "+node+" heard from after "+since.Format(time.RFC3339), func() error {
		l, err := cs.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(since) {
			return fmt.Errorf("lease renewed %v", l.Spec.RenewTime)
		}
		return nil
	})
	waitNodeReady(t, cs, node)
}

// TestIntegrationUpgrade runs the previous release, then this version on
// its data: with the embedded bbolt store (server, then agent, replaced),
// and as a rolling upgrade of three servers on one etcd under traffic.
func TestIntegrationUpgrade(t *testing.T) {
	requireRoot(t)
	old := previousBinary(t)
	t.Run("bbolt", func(t *testing.T) { testUpgradeBolt(t, old) })
	t.Run("etcd", func(t *testing.T) { testRollingUpgradeEtcd(t, old) })
}

// testUpgradeBolt: the previous release's server and agent write objects
// and run a Deployment; the server is stopped and this version started on
// its data directory, then the same for the agent. Everything reads back
// unchanged, the node rejoins each time and the Deployment's pods run.
func testUpgradeBolt(t *testing.T, old string) {
	newBin := binary(t)
	ip := hostBridge(t)
	s := &serverProc{t: t, bin: old, dataDir: t.TempDir(), port: freePort(t), args: []string{"--tls-san", ip}}
	s.startWith("0.0.0.0")
	t.Cleanup(s.kill)
	n1 := startAgent(t, s, ip, 1, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)

	before := readUpgradeObjectsAfterApply(t, s)
	var podsBefore map[string]string
	eventually(t, 90*time.Second, "the Deployment's pods Running under the previous release", func() (err error) {
		podsBefore, err = runningWebPods(cs, 2)
		return err
	})

	// The server: stop, replace the binary, start on the same data.
	s.stop()
	s.bin = newBin
	restarted := time.Now()
	s.startWith("0.0.0.0")
	cs = clientFor(t, s)
	compareUpgradeObjects(t, before, readUpgradeObjects(t, dynamicFor(t, s)))
	waitLeaseRenewed(t, cs, n1.name, restarted)
	var podsAfter map[string]string
	eventually(t, 60*time.Second, "the Deployment's pods Running after the server's upgrade", func() (err error) {
		podsAfter, err = runningWebPods(cs, 2)
		return err
	})
	if diff := cmp.Diff(podsBefore, podsAfter); diff != "" {
		t.Errorf("the Deployment's pods changed across the server's upgrade (-before +after):\n%s", diff)
	}
	if out := s.mustMinik("", "get", "secret", "creds", "-n", "upgrade", "-o", "jsonpath={.data.password}"); out != "aHVudGVyMg==" {
		t.Errorf("secret creds read back by the new client = %q, want hunter2 in base64", out)
	}

	// The agent: stopped (with its pods' processes), this version started
	// on its data directory. The node comes back and runs the pods again.
	n1.kill()
	n1.args[1] = newBin
	restarted = time.Now()
	n1.start()
	t.Cleanup(n1.kill)
	waitLeaseRenewed(t, cs, n1.name, restarted)
	eventually(t, 90*time.Second, "the Deployment's pods Running after the agent's upgrade", func() error {
		_, err := runningWebPods(cs, 2)
		return err
	})
	compareUpgradeObjects(t, before, readUpgradeObjects(t, dynamicFor(t, s)))
}

// rollingClient sends API requests to the servers that are up, one after
// another, and counts them. A server is up from its /readyz answering 200
// until the test begins to stop it; it is stopped at once, without
// draining, so requests sent to it just before are answered during its
// graceful shutdown. A request whose connection is refused never reached
// a server (the port was closed): it goes to the next server that is up,
// as client-go does with several endpoints, and is counted as refused.
// Every other request must succeed at the first attempt: any error is a
// failure.
type rollingClient struct {
	clients []*kubernetes.Clientset
	up      []atomic.Bool
	sent    []atomic.Int64
	refused atomic.Int64

	mu       sync.Mutex
	failures []string
}

func newRollingClient(t *testing.T, servers []*serverProc) *rollingClient {
	rc := &rollingClient{up: make([]atomic.Bool, len(servers)), sent: make([]atomic.Int64, len(servers))}
	for i, s := range servers {
		cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
		if err != nil {
			t.Fatalf("kubeconfig: %v", err)
		}
		cfg.QPS, cfg.Burst, cfg.Timeout = -1, -1, 30*time.Second
		rc.clients = append(rc.clients, kubernetes.NewForConfigOrDie(cfg))
		rc.up[i].Store(true)
	}
	return rc
}

// pick returns the next server that is up after i.
func (rc *rollingClient) pick(i int) int {
	for k := 1; k <= len(rc.clients); k++ {
		if j := (i + k) % len(rc.clients); rc.up[j].Load() {
			return j
		}
	}
	return -1
}

// run creates a ConfigMap through one server, reads it through the next
// and updates it through the one after, until ctx ends. It returns the
// names of the ConfigMaps it created.
func (rc *rollingClient) run(ctx context.Context) []string {
	var created []string
	srv := 0
	for n := 0; ctx.Err() == nil; n++ {
		name := fmt.Sprintf("roll-%d", n)
		steps := []func(cs *kubernetes.Clientset) error{
			func(cs *kubernetes.Clientset) error {
				_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{})
				if err == nil {
					created = append(created, name)
				}
				return err
			},
			func(cs *kubernetes.Clientset) error {
				_, err := cs.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
				return err
			},
			func(cs *kubernetes.Clientset) error {
				cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				cm.Data["n"] = "1"
				_, err = cs.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
				return err
			},
		}
		for i, step := range steps {
			err := rc.send(ctx, &srv, step)
			if err != nil && ctx.Err() == nil {
				rc.fail(fmt.Sprintf("%s step %d through server %d: %v", name, i, srv, err))
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return created
}

// send runs step through the next server that is up after *srv, and on
// through the following ones while the connection is refused.
func (rc *rollingClient) send(ctx context.Context, srv *int, step func(cs *kubernetes.Clientset) error) error {
	for ctx.Err() == nil {
		if *srv = rc.pick(*srv); *srv < 0 {
			return errors.New("no server up")
		}
		err := step(rc.clients[*srv])
		if errors.Is(err, syscall.ECONNREFUSED) {
			rc.refused.Add(1)
			continue
		}
		rc.sent[*srv].Add(1)
		return err
	}
	return ctx.Err()
}

func (rc *rollingClient) fail(msg string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.failures = append(rc.failures, msg)
}

// testRollingUpgradeEtcd runs three servers of the previous release on one
// etcd and replaces them one at a time while a client sends requests to
// those that are up: none fails, and everything acknowledged is there.
func testRollingUpgradeEtcd(t *testing.T, old string) {
	newBin := binary(t)
	etcd := storetest.StartEtcd(t)
	const ip = "127.0.0.1"
	start := func(first *serverProc) *serverProc {
		s := &serverProc{t: t, bin: old, dataDir: t.TempDir(), port: freePort(t),
			args: []string{"--datastore-endpoint", etcd, "--advertise-address", ip}}
		if first != nil {
			s.args = append(s.args, "--server", first.url(), "--token", readToken(t, first))
		}
		s.startWith("0.0.0.0")
		t.Cleanup(s.kill)
		return s
	}
	a := start(nil)
	servers := []*serverProc{a, start(a), start(a)}
	before := readUpgradeObjectsAfterApply(t, a)

	rc := newRollingClient(t, servers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []string, 1)
	go func() { done <- rc.run(ctx) }()
	waitSent := func(i int, n int64) {
		target := rc.sent[i].Load() + n
		eventually(t, 60*time.Second, fmt.Sprintf("%d requests through server %d", n, i), func() error {
			if got := rc.sent[i].Load(); got < target {
				return fmt.Errorf("%d sent", got)
			}
			return nil
		})
	}
	for i := range servers {
		waitSent(i, 10)
	}
	for i, s := range servers {
		rc.up[i].Store(false)
		begun := time.Now()
		s.stop()
		s.bin = newBin
		s.startWith("0.0.0.0")
		rc.up[i].Store(true)
		t.Logf("server %d replaced in %v", i, time.Since(begun).Round(100*time.Millisecond))
		waitSent(i, 20)
	}
	cancel()
	created := <-done

	var total int64
	for i := range servers {
		total += rc.sent[i].Load()
	}
	t.Logf("%d requests answered (%d ConfigMaps created) during the rolling upgrade, %d failed, %d refused and sent on to another server",
		total, len(created), len(rc.failures), rc.refused.Load())
	for _, f := range rc.failures {
		t.Errorf("request to a live server failed: %s", f)
	}
	if len(created) == 0 {
		t.Fatalf("no ConfigMap was created during the rolling upgrade")
	}
	for i, s := range servers {
		cs := clientFor(t, s)
		list, err := cs.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list through upgraded server %d: %v", i, err)
		}
		have := map[string]bool{}
		for _, cm := range list.Items {
			have[cm.Name] = true
		}
		for _, name := range created {
			if !have[name] {
				t.Errorf("ConfigMap %s, acknowledged, missing from the list of upgraded server %d", name, i)
			}
		}
		compareUpgradeObjects(t, before, readUpgradeObjects(t, dynamicFor(t, s)))
	}
	eventually(t, 30*time.Second, "one leader among the upgraded servers", func() error {
		if got := leaders(servers...); len(got) != 1 {
			return fmt.Errorf("leaders = %v", got)
		}
		return nil
	})
}

// readUpgradeObjectsAfterApply writes upgradeObjects, the CRD and its
// object through s and reads them back.
func readUpgradeObjectsAfterApply(t *testing.T, s *serverProc) []*unstructured.Unstructured {
	t.Helper()
	s.mustMinik(upgradeObjects, "apply", "-f", "-")
	s.mustMinik(upgradeCRD, "apply", "-f", "-")
	eventually(t, 30*time.Second, "the Widget kind served", func() error {
		if out, code := s.minik(upgradeWidget, "apply", "-f", "-"); code != 0 {
			return errors.New(out)
		}
		return nil
	})
	return readUpgradeObjects(t, dynamicFor(t, s))
}
