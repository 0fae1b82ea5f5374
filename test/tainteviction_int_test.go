//go:build integration

package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// TestIntegrationTaintEvictionTolerationSeconds runs the scenario of
// Kubernetes' conformance spec "evicts pods with minTolerationSeconds": of
// two pods tolerating a NoExecute taint for 5 s and 25 s, each is gone
// (deleted and its container stopped) within its time plus the spec's
// slack once the node is tainted.
func TestIntegrationTaintEvictionTolerationSeconds(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1)
	cs := clientFor(t, s)
	ctx := context.Background()
	waitNodeReady(t, cs, n1.name)

	const key = "example.com/evict"
	for name, secs := range map[string]int64{"five": 5, "twenty-five": 25} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"kubernetes.io/hostname": n1.name},
				Containers: []corev1.Container{{
					Name: "c", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
				}},
				TerminationGracePeriodSeconds: new(int64),
				Tolerations: []corev1.Toleration{{
					Key: key, Value: "v", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs,
				}},
			},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	waitPodRunning(t, cs, "default", "five")
	waitPodRunning(t, cs, "default", "twenty-five")

	now := metav1.Now()
	taint := corev1.Taint{Key: key, Value: "v", Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, n1.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints = append(n.Spec.Taints, taint)
		_, err = cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("taint %s: %v", n1.name, err)
	}
	start := time.Now()
	gone := map[string]time.Duration{}
	eventually(t, 110*time.Second, "both pods gone", func() error {
		for _, name := range []string{"five", "twenty-five"} {
			if _, done := gone[name]; done {
				continue
			}
			if _, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("%s still there after %v", name, time.Since(start).Round(time.Second))
			}
			gone[name] = time.Since(start)
		}
		return nil
	})
	t.Logf("gone after tainting: five %v, twenty-five %v", gone["five"].Round(time.Millisecond), gone["twenty-five"].Round(time.Millisecond))
	// timeAdded is stored in whole seconds: the toleration counts from
	// up to a second before the taint was written.
	if early := start.Sub(now.Time.Truncate(time.Second)); gone["twenty-five"]+early < 25*time.Second {
		t.Errorf("twenty-five gone %v after tainting (timeAdded %v earlier), before its 25 s toleration", gone["twenty-five"], early)
	}
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, n1.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints = nil
		_, err = cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Errorf("untaint %s: %v", n1.name, err)
	}
}
