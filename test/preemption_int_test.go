//go:build integration

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const fakeCPU corev1.ResourceName = "example.com/fakecpu"

// preemptionPod is a pod template asking for amount of example.com/fakecpu
// on node at a priority class.
func preemptionPod(name, node, class string, amount int64) corev1.PodTemplateSpec {
	res := corev1.ResourceList{fakeCPU: *resource.NewQuantity(amount, resource.DecimalSI)}
	grace := int64(1)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			PriorityClassName:             class,
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": node},
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "c", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
				Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
			}},
		},
	}
}

// podsOf returns the pods labelled app=name that are not being deleted.
func podsOf(cs *kubernetes.Clientset, name string) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// TestIntegrationPreemption runs the scenario of Kubernetes' conformance
// spec "PreemptionExecutionPath runs ReplicaSets" on a real node: a node
// offers 1000 example.com/fakecpu, ReplicaSets at priorities 1, 2 and 3
// use 200, 300 and 450 of it, and a pod at priority 4 asking for 500
// evicts the pods of the first two (only they need to go) and runs; their
// replacements wait, and nothing is evicted twice.
func TestIntegrationPreemption(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1)
	cs := clientFor(t, s)
	ctx := context.Background()
	waitNodeReady(t, cs, n1.name)

	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"capacity":    map[string]string{string(fakeCPU): "1000"},
		"allocatable": map[string]string{string(fakeCPU): "1000"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, n1.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("advertise %s: %v", fakeCPU, err)
	}
	for i := int32(1); i <= 4; i++ {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i)}, Value: i}
		if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create PriorityClass: %v", err)
		}
	}
	first := map[string]types.UID{}
	for i, amount := range []int64{200, 300, 450} {
		name := fmt.Sprintf("rs%d", i+1)
		one := int32(1)
		tmpl := preemptionPod(name, n1.name, fmt.Sprintf("p%d", i+1), amount)
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.ReplicaSetSpec{
				Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl,
			},
		}
		if _, err := cs.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ReplicaSet %s: %v", name, err)
		}
		eventually(t, 90*time.Second, name+" running", func() error {
			pods, err := podsOf(cs, name)
			if err != nil || len(pods) != 1 || pods[0].Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pods %d (%v)", len(pods), err)
			}
			first[name] = pods[0].UID
			return nil
		})
	}

	tmpl := preemptionPod("preemptor", n1.name, "p4", 500)
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create preemptor: %v", err)
	}
	start := time.Now()
	waitPodRunning(t, cs, "default", "preemptor")
	t.Logf("preemptor running %v after creation", time.Since(start).Round(time.Millisecond))

	// Settle, then check: rs3's pod untouched, rs1's and rs2's replaced
	// once, their replacements pending.
	time.Sleep(5 * time.Second)
	for name, wantFirst := range map[string]bool{"rs1": false, "rs2": false, "rs3": true} {
		pods, err := podsOf(cs, name)
		if err != nil || len(pods) != 1 {
			t.Errorf("%s: %d live pods (%v), want 1", name, len(pods), err)
			continue
		}
		p := pods[0]
		if got := p.UID == first[name]; got != wantFirst {
			t.Errorf("%s: pod is the first one = %v, want %v", name, got, wantFirst)
		}
		if !wantFirst && p.Spec.NodeName != "" {
			t.Errorf("%s: replacement bound to %q, want it pending (no room left)", name, p.Spec.NodeName)
		}
	}
	events, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=Preempted"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 2 {
		t.Errorf("%d Preempted events, want 2 (rs1's and rs2's pods)", len(events.Items))
	}
	for _, name := range []string{"rs1", "rs2", "rs3"} {
		if err := cs.AppsV1().ReplicaSets("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete ReplicaSet %s: %v", name, err)
		}
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "preemptor", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete preemptor: %v", err)
	}
	for i := 1; i <= 4; i++ {
		if err := cs.SchedulingV1().PriorityClasses().Delete(ctx, fmt.Sprintf("p%d", i), metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete PriorityClass: %v", err)
		}
	}
}
