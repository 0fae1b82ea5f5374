package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBindsAndRecordsEvent(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	c.createNode(t, ctx, testNode("big", "4", "8Gi", 110))
	c.createNode(t, ctx, testNode("tiny", "100m", "8Gi", 110))
	c.createPod(t, ctx, testPod("web", "1", "1Gi"))
	c.createPod(t, ctx, testPod("other", "", "", func(p *corev1.Pod) { p.Spec.SchedulerName = "other-scheduler" }))
	pod := c.waitPod(t, ctx, "web", "bound", bound)
	if pod.Spec.NodeName != "big" {
		t.Errorf("web bound to %q, want big", pod.Spec.NodeName)
	}
	var scheduled bool
	for _, cond := range pod.Status.Conditions {
		scheduled = scheduled || cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionTrue
	}
	if !scheduled {
		t.Errorf("web conditions = %+v, want PodScheduled=True", pod.Status.Conditions)
	}
	c.waitEvent(t, ctx, "web", "Scheduled", "Successfully assigned default/web to big")
	// The binding above was processed after "other" was queued (both
	// created before it), so "other" would be bound by now if it were
	// ours to place.
	other, err := c.client.CoreV1().Pods("default").Get(ctx, "other", metav1.GetOptions{})
	if err != nil || other.Spec.NodeName != "" {
		t.Errorf("pod for another scheduler: nodeName %q, err %v; want unbound", other.Spec.NodeName, err)
	}
}

func TestUnschedulableUntilNodeAppears(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	c.createNode(t, ctx, testNode("a", "500m", "8Gi", 110))
	c.createNode(t, ctx, testNode("b", "4", "8Gi", 110, tainted("dedicated", "db", corev1.TaintEffectNoSchedule)))
	c.createPod(t, ctx, testPod("web", "1", ""))
	msg := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: db}"
	c.waitPod(t, ctx, "web", "marked unschedulable", unschedulableWith(msg))
	c.waitEvent(t, ctx, "web", "FailedScheduling", msg)

	c.createNode(t, ctx, testNode("c", "2", "8Gi", 110))
	if pod := c.waitPod(t, ctx, "web", "bound", bound); pod.Spec.NodeName != "c" {
		t.Errorf("web bound to %q after node c appeared, want c", pod.Spec.NodeName)
	}
}

func TestSecondPodWaitsForRoom(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	c.createNode(t, ctx, testNode("a", "1", "8Gi", 110))
	c.createPod(t, ctx, testPod("first", "600m", ""))
	c.createPod(t, ctx, testPod("second", "600m", ""))
	c.waitPod(t, ctx, "first", "bound", bound)
	c.waitPod(t, ctx, "second", "marked unschedulable", unschedulableWith("0/1 nodes are available: 1 Insufficient cpu"))

	if err := c.client.CoreV1().Pods("default").Delete(ctx, "first", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("delete first: %v", err)
	}
	c.waitPod(t, ctx, "second", "bound after first deleted", bound)
}

func TestCordonedNodeUncordoned(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	c.createNode(t, ctx, testNode("a", "1", "8Gi", 110, cordoned))
	c.createPod(t, ctx, testPod("web", "", ""))
	c.waitPod(t, ctx, "web", "marked unschedulable", unschedulableWith("0/1 nodes are available: 1 node(s) were unschedulable"))
	node, err := c.client.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	node.Spec.Unschedulable = false
	if _, err := c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("uncordon: %v", err)
	}
	c.waitPod(t, ctx, "web", "bound after uncordon", bound)
}

// TestWaitsForClaims checks that a pod waits, unschedulable, while a
// claim it uses is missing or not bound, and is placed once it is bound.
func TestWaitsForClaims(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	c.createNode(t, ctx, testNode("a", "4", "8Gi", 110))
	c.createPod(t, ctx, testPod("db", "", "", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db"},
		}}}
	}))
	c.waitPod(t, ctx, "db", "unschedulable, no claim",
		unschedulableWith(`0/1 nodes are available: persistentvolumeclaim "data-db" not found.`))

	claims := c.client.CoreV1().PersistentVolumeClaims("default")
	claim, err := claims.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-db"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.waitPod(t, ctx, "db", "unschedulable, claim pending",
		unschedulableWith("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."))

	claim.Status.Phase = corev1.ClaimBound
	if _, err := claims.UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitPod(t, ctx, "db", "bound once the claim is", bound)
}
