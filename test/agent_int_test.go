//go:build integration

package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/runtime/runtimetest"
)

const duoPod = `apiVersion: v1
kind: Pod
metadata: {name: duo}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 5
  volumes: [{name: shared, emptyDir: {}}]
  containers:
  - name: web
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo hello-from-web > /data/index.html; exec httpd -f -p 8080 -h /data"]
    ports: [{containerPort: 8080, hostPort: 18080}]
    volumeMounts: [{name: shared, mountPath: /data}]
  - name: client
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 1; while true; do wget -qO- http://localhost:8080/index.html; sleep 2; done"]
    volumeMounts: [{name: shared, mountPath: /data}]
`

const crashPod = `apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo boom; exit 1"]
`

func waitNodeReady(t *testing.T, cs *kubernetes.Clientset, name string) {
	eventually(t, 60*time.Second, "node "+name+" Ready", func() error {
		n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", n.Status.Conditions)
	})
}

func waitPodRunning(t *testing.T, cs *kubernetes.Clientset, ns, name string) *corev1.Pod {
	var pod *corev1.Pod
	eventually(t, 90*time.Second, "pod "+name+" Running", func() error {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			return fmt.Errorf("phase %s ip %q statuses %+v", p.Status.Phase, p.Status.PodIP, p.Status.ContainerStatuses)
		}
		pod = p
		return nil
	})
	return pod
}

// TestIntegrationAgentRunsPods joins two agents, each in its own network
// namespace, and checks what a pod on a real node must do.
func TestIntegrationAgentRunsPods(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1, "--restart-backoff", "1s")
	n2 := startAgent(t, s, ip, 2)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	waitNodeReady(t, cs, n2.name)
	ctx := context.Background()

	s.mustMinik(strings.Replace(duoPod, "NODE", n1.name, 1), "apply", "-f", "-")
	pod := waitPodRunning(t, cs, "default", "duo")
	if !strings.HasPrefix(pod.Status.PodIP, "10.42.") {
		t.Errorf("pod IP %s, want one from the cluster CIDR", pod.Status.PodIP)
	}
	// The containers share localhost and the emptyDir.
	eventually(t, 30*time.Second, "client log", func() error {
		out, code := s.minik("", "logs", "duo", "-c", "client")
		if code != 0 || !strings.Contains(out, "hello-from-web") {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})
	// The node's events about the pod: what kubectl describe and get events
	// show.
	waitEvents(t, cs, n1.name, "duo", "spec.containers{web}", "Pulled", "Created", "Started")
	waitEvents(t, cs, n1.name, "duo", "spec.containers{client}", "Pulled", "Created", "Started")
	describe := s.mustMinik("", "describe", "pod", "duo")
	for _, want := range []string{"Pulled", "already present on machine", "Created container web", "Started container client", "kubelet"} {
		if !strings.Contains(describe, want) {
			t.Errorf("describe pod duo lacks %q:\n%s", want, describe)
		}
	}
	if out := s.mustMinik("", "get", "events", "--field-selector", "involvedObject.name=duo,reason=Started"); !strings.Contains(out, "Started container web") {
		t.Errorf("get events lacks Started container web:\n%s", out)
	}
	if out := strings.TrimSpace(s.mustMinik("", "exec", "duo", "-c", "web", "--", "hostname")); out != "duo" {
		t.Errorf("hostname = %q, want duo", out)
	}
	if _, code := s.minik("", "exec", "duo", "-c", "web", "--", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exec exit status = %d, want 3", code)
	}
	// The pod IP answers from its node.
	out, err := n1.httpGet(pod.Status.PodIP+":8080", "/index.html")
	if err != nil || !strings.Contains(out, "hello-from-web") {
		t.Errorf("GET pod IP from the node: %v %s", err, out)
	}

	// hostPort: the node's address forwards to the pod.
	eventually(t, 15*time.Second, "hostPort", func() error {
		out, err := n1.httpGet(n1.ip+":18080", "/index.html")
		if err != nil || !strings.Contains(out, "hello-from-web") {
			return fmt.Errorf("GET node:18080: %v %q", err, out)
		}
		return nil
	})

	// A crashing container is restarted with back-off.
	s.mustMinik(strings.Replace(crashPod, "NODE", n1.name, 1), "apply", "-f", "-")
	sawBackoff := false
	eventually(t, 60*time.Second, "crash pod restarted twice", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "crash", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return fmt.Errorf("no status yet (%v)", err)
		}
		st := p.Status.ContainerStatuses[0]
		if w := st.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			sawBackoff = true
		}
		if st.RestartCount < 2 || !sawBackoff {
			return fmt.Errorf("restartCount %d, back-off seen %v", st.RestartCount, sawBackoff)
		}
		return nil
	})
	if out := s.mustMinik("", "logs", "crash", "--previous"); !strings.Contains(out, "boom") {
		t.Errorf("logs --previous = %q, want boom", out)
	}
	backOff := waitEvents(t, cs, n1.name, "crash", "spec.containers{main}", "Started", "BackOff")
	if ev := backOff["BackOff"]; ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "Back-off restarting failed container main") {
		t.Errorf("BackOff event = %s %q", ev.Type, ev.Message)
	}
	// Restarts repeat "Started container main": one Event, counted.
	eventually(t, 30*time.Second, "Started events aggregated", func() error {
		list, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=crash,involvedObject.fieldPath=spec.containers{main},reason=Started",
		})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 || list.Items[0].Count < 3 {
			return fmt.Errorf("%d Started events (count %v), want one with count ≥ 3", len(list.Items), func() []int32 {
				var c []int32
				for _, ev := range list.Items {
					c = append(c, ev.Count)
				}
				return c
			}())
		}
		return nil
	})
	if out := s.mustMinik("", "describe", "pod", "crash"); !strings.Contains(out, "Back-off restarting failed container main") {
		t.Errorf("describe pod crash lacks the BackOff event:\n%s", out)
	}

	// `minik image import` brings an image in by hand; a pod that must not
	// pull runs from it.
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	tarPath, err := runtimetest.WriteOCIArchive(t.TempDir(), "example.org/tools/busybox:imported", img)
	if err != nil {
		t.Fatal(err)
	}
	out = s.mustMinik("", "image", "import", "--data-dir", n1.dataDir, "--node-name", n1.name, tarPath)
	if !strings.Contains(out, "imported example.org/tools/busybox:imported") {
		t.Errorf("image import output: %s", out)
	}
	never := strings.NewReplacer("name: crash", "name: imported", "image: busybox", "image: example.org/tools/busybox:imported",
		"imagePullPolicy: IfNotPresent", "imagePullPolicy: Never", `"echo boom; exit 1"`, `"sleep 3600"`,
		"  containers:", "  terminationGracePeriodSeconds: 2\n  containers:").Replace(strings.Replace(crashPod, "NODE", n1.name, 1))
	s.mustMinik(never, "apply", "-f", "-")
	waitPodRunning(t, cs, "default", "imported")

	// Node authorization: node1's identity may write the status of its own
	// pods only.
	other := strings.Replace(strings.Replace(crashPod, "NODE", n2.name, 1), "name: crash", "name: elsewhere", 1)
	s.mustMinik(other, "apply", "-f", "-")
	nodeClient := nodeClientset(t, s, n1)
	theirs, err := cs.CoreV1().Pods("default").Get(ctx, "elsewhere", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	theirs.Status.Message = "written by the wrong node"
	if _, err := nodeClient.CoreV1().Pods("default").UpdateStatus(ctx, theirs, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node1 updating node2's pod status = %v, want Forbidden", err)
	}
	if _, err := nodeClient.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "nope"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node creating a service = %v, want Forbidden", err)
	}

	// Delete leaves nothing behind on the node.
	for _, name := range []string{"duo", "crash", "imported"} {
		s.mustMinik("", "delete", "pod", name, "--wait=false")
	}
	waitEvents(t, cs, n1.name, "duo", "spec.containers{web}", "Killing")
	eventually(t, 60*time.Second, "pods gone", func() error {
		list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n1.name})
		if err != nil || len(list.Items) > 0 {
			return fmt.Errorf("%d pods left (%v)", len(list.Items), err)
		}
		return nil
	})
	sock := filepath.Join(n1.dataDir, "containerd", "containerd.sock")
	eventually(t, 30*time.Second, "no containers on node1", func() error {
		out, err := exec.Command("ctr", "--address", sock, "-n", "minik-"+n1.name, "containers", "ls", "-q").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			return fmt.Errorf("containers: %v %q", err, out)
		}
		out, err = exec.Command("ctr", "--address", sock, "-n", "minik-"+n1.name, "snapshots", "ls").CombinedOutput()
		if err != nil || strings.Count(strings.TrimSpace(string(out)), "\\n") > 0 && strings.Contains(string(out), "Active") {
			return fmt.Errorf("snapshots: %v %q", err, out)
		}
		if m, _ := filepath.Glob(filepath.Join(n1.dataDir, "pods", "default_duo_*")); len(m) > 0 {
			return fmt.Errorf("pod directory left: %v", m)
		}
		return nil
	})
}

// nodeClientset is a client with node a's own identity.
func nodeClientset(t *testing.T, s *serverProc, a *agentProc) *kubernetes.Clientset {
	t.Helper()
	dir := filepath.Join(a.dataDir, "tls")
	for _, f := range []string{"node.crt", "node.key", "ca.crt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("node credentials: %v", err)
		}
	}
	cfg := &rest.Config{Host: s.url(), TLSClientConfig: rest.TLSClientConfig{
		CertFile: filepath.Join(dir, "node.crt"), KeyFile: filepath.Join(dir, "node.key"), CAFile: filepath.Join(dir, "ca.crt"),
	}}
	return kubernetes.NewForConfigOrDie(cfg)
}

// waitEvents waits for events from node's kubelet about the pod's
// fieldPath with each of the reasons, and returns them by reason.
func waitEvents(t *testing.T, cs *kubernetes.Clientset, node, pod, fieldPath string, reasons ...string) map[string]corev1.Event {
	t.Helper()
	got := map[string]corev1.Event{}
	eventually(t, 60*time.Second, fmt.Sprintf("events %v about %s %s", reasons, pod, fieldPath), func() error {
		list, err := cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod,
		})
		if err != nil {
			return err
		}
		for _, ev := range list.Items {
			if ev.InvolvedObject.FieldPath == fieldPath && ev.Source.Component == "kubelet" && ev.Source.Host == node {
				got[ev.Reason] = ev
			}
		}
		for _, r := range reasons {
			if _, ok := got[r]; !ok {
				return fmt.Errorf("no %s event among %d", r, len(list.Items))
			}
		}
		return nil
	})
	return got
}
