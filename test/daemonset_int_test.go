//go:build integration

package test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const daemonSetManifest = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
`

// daemonPodsOn returns the running, ready pods of the agent DaemonSet by
// node, with their images.
func daemonPodsOn(cs *kubernetes.Clientset) (map[string][]string, error) {
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		return nil, err
	}
	by := map[string][]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && isReady(&p) {
			by[p.Spec.NodeName] = append(by[p.Spec.NodeName], p.Spec.Containers[0].Image)
		}
	}
	return by, nil
}

// waitDaemonPods waits until each of nodes, and no other, runs one ready
// pod of the agent DaemonSet with image.
func waitDaemonPods(t *testing.T, cs *kubernetes.Clientset, image string, nodes ...string) {
	t.Helper()
	eventually(t, 90*time.Second, fmt.Sprintf("one %s pod on each of %v", image, nodes), func() error {
		by, err := daemonPodsOn(cs)
		if err != nil {
			return err
		}
		var on []string
		for n, images := range by {
			if len(images) != 1 || images[0] != image {
				return fmt.Errorf("node %s runs %v", n, images)
			}
			on = append(on, n)
		}
		sort.Strings(on)
		if strings.Join(on, ",") != strings.Join(nodes, ",") {
			return fmt.Errorf("pods on %v", on)
		}
		return nil
	})
}

// TestIntegrationDaemonSet runs a DaemonSet on real nodes: a pod on each
// of two nodes, and on a third as soon as it joins; a rolling update, its
// history and an undo through the bundled kubectl; deleting it removes
// its pods.
func TestIntegrationDaemonSet(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1)
	n2 := startAgent(t, s, ip, 2)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	waitNodeReady(t, cs, n2.name)

	start := time.Now()
	s.mustMinik(daemonSetManifest, "apply", "-f", "-")
	waitDaemonPods(t, cs, "busybox", n1.name, n2.name)
	t.Logf("daemon pods running on 2 nodes %v after the apply", time.Since(start).Round(time.Millisecond))
	s.mustMinik("", "kubectl", "rollout", "status", "ds/agent", "--timeout", "60s")
	out := s.mustMinik("", "get", "ds", "agent")
	if !strings.Contains(out, "NODE SELECTOR") || !strings.Contains(strings.Join(strings.Fields(out), " "), "agent 2 2 2 2 2 <none>") {
		t.Errorf("get ds: want DESIRED CURRENT READY UP-TO-DATE AVAILABLE 2 and NODE SELECTOR <none>:\n%s", out)
	}

	n3 := startAgent(t, s, ip, 3)
	joined := time.Now()
	waitNodeReady(t, cs, n3.name)
	waitDaemonPods(t, cs, "busybox", n1.name, n2.name, n3.name)
	t.Logf("daemon pod running on the joined node %v after its agent started", time.Since(joined).Round(time.Millisecond))

	s.mustMinik("", "kubectl", "set", "image", "ds/agent", "main=busybox:latest")
	s.mustMinik("", "kubectl", "rollout", "status", "ds/agent", "--timeout", "90s")
	waitDaemonPods(t, cs, "busybox:latest", n1.name, n2.name, n3.name)
	if out := s.mustMinik("", "kubectl", "rollout", "history", "ds/agent"); !strings.Contains(out, "\n1 ") || !strings.Contains(out, "\n2 ") {
		t.Errorf("rollout history lacks revisions 1 and 2:\n%s", out)
	}
	s.mustMinik("", "kubectl", "rollout", "undo", "ds/agent")
	s.mustMinik("", "kubectl", "rollout", "status", "ds/agent", "--timeout", "90s")
	waitDaemonPods(t, cs, "busybox", n1.name, n2.name, n3.name)
	revs, err := cs.AppsV1().ControllerRevisions("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil || len(revs.Items) != 2 {
		t.Errorf("revisions after undo: %v, want 2 (the first renumbered 3)", err)
	}
	t.Logf("after undo:\n%s\n%s", s.mustMinik("", "get", "ds", "-o", "wide"), s.mustMinik("", "kubectl", "rollout", "history", "ds/agent"))

	s.mustMinik("", "delete", "ds", "agent")
	eventually(t, 60*time.Second, "daemon pods gone", func() error {
		list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil || len(list.Items) != 0 {
			return fmt.Errorf("%d pods left (%v)", len(list.Items), err)
		}
		return nil
	})
}
