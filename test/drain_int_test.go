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

const drainRC = `apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 2
  selector: {app: web}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      volumes: [{name: scratch, emptyDir: {}}]
      containers:
      - name: web
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
        volumeMounts: [{name: scratch, mountPath: /scratch}]
`

const drainPDB = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: MIN
  selector: {matchLabels: {app: web}}
`

// webPodsOn counts the Running, ready pods of the web RC per node.
func webPodsOn(cs *kubernetes.Clientset) (map[string]int, error) {
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	by := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && isReady(&p) {
			by[p.Spec.NodeName]++
		}
	}
	return by, nil
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitBudget waits until the web budget's status shows allowed
// disruptions.
func waitBudget(t *testing.T, cs *kubernetes.Clientset, allowed int32) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("budget allowing %d disruptions", allowed), func() error {
		pdb, err := cs.PolicyV1().PodDisruptionBudgets("default").Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if st := pdb.Status; st.ObservedGeneration != pdb.Generation || st.DisruptionsAllowed != allowed {
			return fmt.Errorf("status %+v (generation %d)", st, pdb.Generation)
		}
		return nil
	})
}

// TestIntegrationDrainUsesEviction drains a node with the bundled kubectl:
// a PodDisruptionBudget that allows no disruption keeps the pods where
// they are (eviction answers 429, which a DELETE would not), and one that
// allows a disruption lets the drain move them one at a time.
func TestIntegrationDrainUsesEviction(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1)
	n2 := startAgent(t, s, ip, 2)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	waitNodeReady(t, cs, n2.name)

	// Both replicas on node1.
	s.mustMinik("", "cordon", n2.name)
	s.mustMinik(drainRC, "apply", "-f", "-")
	eventually(t, 90*time.Second, "two web pods on node1", func() error {
		by, err := webPodsOn(cs)
		if err != nil || by[n1.name] != 2 {
			return fmt.Errorf("running by node %v (%v)", by, err)
		}
		return nil
	})
	s.mustMinik("", "uncordon", n2.name)

	s.mustMinik(strings.Replace(drainPDB, "MIN", "2", 1), "apply", "-f", "-")
	waitBudget(t, cs, 0)
	if out := s.mustMinik("", "get", "pdb", "web"); !strings.Contains(out, "web") || !strings.Contains(out, "2") {
		t.Errorf("get pdb:\n%s", out)
	}

	out, code := s.minik("", "drain", n1.name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout", "12s")
	if code == 0 || !strings.Contains(out, "Cannot evict pod as it would violate the pod's disruption budget") {
		t.Fatalf("drain with a budget allowing no disruption: exit %d, want failure naming the budget:\n%s", code, out)
	}
	if by, err := webPodsOn(cs); err != nil || by[n1.name] != 2 {
		t.Errorf("after the blocked drain: running by node %v (%v), want both still on node1", by, err)
	}
	node, err := cs.CoreV1().Nodes().Get(context.Background(), n1.name, metav1.GetOptions{})
	if err != nil || !node.Spec.Unschedulable {
		t.Errorf("node1 not cordoned by the drain (%v)", err)
	}

	// One disruption at a time: the drain evicts one pod, waits for its
	// replacement on node2 to be ready, then evicts the other.
	s.mustMinik(strings.Replace(drainPDB, "MIN", "1", 1), "apply", "-f", "-")
	waitBudget(t, cs, 1)
	out = s.mustMinik("", "drain", n1.name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout", "50s")
	if strings.Count(out, " evicted") != 2 || !strings.Contains(out, "drained") ||
		!strings.Contains(out, "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget") {
		t.Errorf("drain output lacks two evictions, one of them held back by the budget:\n%s", out)
	}
	t.Logf("drain:\n%s", out)
	eventually(t, 60*time.Second, "web pods moved to node2", func() error {
		by, err := webPodsOn(cs)
		if err != nil || by[n2.name] != 2 || by[n1.name] != 0 {
			return fmt.Errorf("running by node %v (%v)", by, err)
		}
		return nil
	})
	s.mustMinik("", "delete", "rc", "web")
	s.mustMinik("", "delete", "pdb", "web")
}
