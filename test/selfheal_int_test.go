//go:build integration

package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const webRC = `apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 4
  selector: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      containers:
      - name: main
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
        resources: {requests: {cpu: 10m, memory: 8Mi}}
`

// runningByNode counts the RC's pods that are Running and not being
// deleted, per node, and all of its pods.
func runningByNode(cs *kubernetes.Clientset) (map[string]int, int, error) {
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, 0, err
	}
	by := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			by[p.Spec.NodeName]++
		}
	}
	return by, len(list.Items), nil
}

func expectRunning(t *testing.T, cs *kubernetes.Clientset, timeout time.Duration, what string, ok func(by map[string]int, total int) bool) {
	t.Helper()
	eventually(t, timeout, what, func() error {
		by, total, err := runningByNode(cs)
		if err != nil {
			return err
		}
		if !ok(by, total) {
			return fmt.Errorf("running per node %v, pods in all %d", by, total)
		}
		return nil
	})
}

func sum(by map[string]int) int {
	n := 0
	for _, v := range by {
		n += v
	}
	return n
}

// TestIntegrationSelfHealing runs an RC over two agents and checks that
// the cluster keeps exactly the replicas asked for through pod deletion,
// scaling, the abrupt loss of a node and its return.
func TestIntegrationSelfHealing(t *testing.T) {
	s, ip := startClusterServer(t, "--node-monitor-grace-period", "4s", "--pod-eviction-timeout", "5s")
	n1 := startAgent(t, s, ip, 1, "--heartbeat-interval", "1s")
	n2 := startAgent(t, s, ip, 2, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	waitNodeReady(t, cs, n2.name)
	ctx := context.Background()

	s.mustMinik(webRC, "apply", "-f", "-")
	expectRunning(t, cs, 90*time.Second, "4 replicas over both nodes", func(by map[string]int, total int) bool {
		return sum(by) == 4 && total == 4 && by[n1.name] > 0 && by[n2.name] > 0
	})

	list, _ := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	victim := list.Items[0].Name
	s.mustMinik("", "delete", "pod", victim, "--wait=false")
	expectRunning(t, cs, 60*time.Second, "deleted pod replaced", func(by map[string]int, total int) bool {
		if sum(by) != 4 || total != 4 {
			return false
		}
		_, err := cs.CoreV1().Pods("default").Get(ctx, victim, metav1.GetOptions{})
		return err != nil
	})

	s.mustMinik("", "scale", "rc", "web", "--replicas=6")
	expectRunning(t, cs, 60*time.Second, "scaled to 6", func(by map[string]int, total int) bool { return sum(by) == 6 && total == 6 })
	s.mustMinik("", "scale", "rc", "web", "--replicas=4")
	expectRunning(t, cs, 60*time.Second, "scaled back to 4", func(by map[string]int, total int) bool { return sum(by) == 4 && total == 4 })
	rc, err := cs.CoreV1().ReplicationControllers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || rc.Status.Replicas != 4 || rc.Status.ObservedGeneration != rc.Generation {
		t.Errorf("rc status %+v (generation %d), err %v", rc.Status, rc.Generation, err)
	}

	// Lose node2 abruptly, containerd and containers with it.
	n2.kill()
	start := time.Now()
	expectRunning(t, cs, 90*time.Second, "all 4 replicas on node1", func(by map[string]int, total int) bool {
		return by[n1.name] == 4 && by[n2.name] == 0
	})
	t.Logf("replicas back to 4 on node1 %v after node2 died", time.Since(start).Round(time.Second))

	// node2 returns: its stale pods go, and exactly 4 remain.
	n2.start()
	expectRunning(t, cs, 90*time.Second, "exactly 4 pods after node2 returns", func(by map[string]int, total int) bool {
		return sum(by) == 4 && total == 4
	})
	waitNodeReady(t, cs, n2.name)

	out := s.mustMinik("", "delete", "rc", "web")
	if !strings.Contains(out, `"web" deleted`) {
		t.Errorf("delete rc: %s", out)
	}
	expectRunning(t, cs, 60*time.Second, "pods deleted with their RC", func(by map[string]int, total int) bool { return total == 0 })
}
