package apiserver

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPodRuntimeClassAdmission(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	rcs := ts.client.NodeV1().RuntimeClasses()
	pods := ts.client.CoreV1().Pods("default")

	p := testPod("missing", nil)
	p.Spec.RuntimeClassName = ptr.To("nope")
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `RuntimeClass "nope" not found`) {
		t.Fatalf("create with a missing RuntimeClass = %v, want Forbidden naming it", err)
	}
	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("1Mi")}
	if _, err := rcs.Create(ctx, &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Handler: "runc",
		Overhead: &nodev1.Overhead{PodFixed: overhead},
		Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"disk": "ssd"},
			Tolerations: []corev1.Toleration{{Key: "fast", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create RuntimeClass: %v", err)
	}
	p = testPod("fast", nil)
	p.Spec.RuntimeClassName = ptr.To("fast")
	got, err := pods.Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create with RuntimeClass fast: %v", err)
	}
	if q := got.Spec.Overhead[corev1.ResourceCPU]; q.Cmp(resource.MustParse("10m")) != 0 {
		t.Errorf("overhead cpu = %v, want 10m", q.String())
	}
	if got.Spec.NodeSelector["disk"] != "ssd" || !hasToleration(got.Spec.Tolerations, corev1.Toleration{Key: "fast", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}) {
		t.Errorf("scheduling not merged: nodeSelector %v, tolerations %v", got.Spec.NodeSelector, got.Spec.Tolerations)
	}
	p = testPod("conflict", nil)
	p.Spec.RuntimeClassName = ptr.To("fast")
	p.Spec.NodeSelector = map[string]string{"disk": "hdd"}
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create with a conflicting nodeSelector = %v, want Forbidden", err)
	}
	p = testPod("own-overhead", nil)
	p.Spec.Overhead = overhead
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create with an overhead and no RuntimeClass = %v, want Forbidden", err)
	}
	if _, err := rcs.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Handler: "Not_A_Label"}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "handler") {
		t.Errorf("create RuntimeClass with a bad handler = %v, want Invalid naming handler", err)
	}
	rc, _ := rcs.Get(ctx, "fast", metav1.GetOptions{})
	rc.Handler = "other"
	if _, err := rcs.Update(ctx, rc, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "handler") {
		t.Errorf("changing the handler = %v, want Invalid naming handler", err)
	}
}

func TestPodPriorityAdmission(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	if err := ts.EnsurePriorityClasses(ctx); err != nil {
		t.Fatalf("EnsurePriorityClasses: %v", err)
	}
	pcs := ts.client.SchedulingV1().PriorityClasses()
	pods := ts.client.CoreV1().Pods("default")

	got, err := pods.Create(ctx, testPod("plain", nil), metav1.CreateOptions{})
	if err != nil || got.Spec.Priority == nil || *got.Spec.Priority != 0 || got.Spec.PreemptionPolicy == nil || *got.Spec.PreemptionPolicy != corev1.PreemptLowerPriority {
		t.Fatalf("plain pod = %v, %v; want priority 0, PreemptLowerPriority", got.Spec.Priority, err)
	}
	p := testPod("critical", nil)
	p.Spec.PriorityClassName = "system-node-critical"
	if got, err = pods.Create(ctx, p, metav1.CreateOptions{}); err != nil || *got.Spec.Priority != 2000001000 {
		t.Fatalf("system-node-critical pod = %v, %v; want priority 2000001000", got.Spec.Priority, err)
	}
	p = testPod("unknown", nil)
	p.Spec.PriorityClassName = "nope"
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "no PriorityClass with name nope") {
		t.Errorf("unknown class = %v, want Forbidden naming it", err)
	}
	if _, err := pcs.Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000, GlobalDefault: true,
		PreemptionPolicy: ptr.To(corev1.PreemptNever)}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PriorityClass: %v", err)
	}
	if got, err = pods.Create(ctx, testPod("defaulted", nil), metav1.CreateOptions{}); err != nil ||
		got.Spec.PriorityClassName != "high" || *got.Spec.Priority != 1000 || *got.Spec.PreemptionPolicy != corev1.PreemptNever {
		t.Fatalf("pod under a global default = %+v, %v; want class high, 1000, Never", got.Spec, err)
	}
	p = testPod("mismatch", nil)
	p.Spec.PriorityClassName = "high"
	p.Spec.Priority = ptr.To[int32](5)
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("priority other than the class's = %v, want Forbidden", err)
	}
	for name, pc := range map[string]*schedulingv1.PriorityClass{
		"metadata.name": {ObjectMeta: metav1.ObjectMeta{Name: "system-mine"}, Value: 1},
		"value":         {ObjectMeta: metav1.ObjectMeta{Name: "huge"}, Value: 1000000001},
		"preemptionPolicy": {ObjectMeta: metav1.ObjectMeta{Name: "odd"}, Value: 1,
			PreemptionPolicy: ptr.To(corev1.PreemptionPolicy("Sometimes"))},
	} {
		if _, err := pcs.Create(ctx, pc, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), name) {
			t.Errorf("create %s = %v, want Invalid naming %s", pc.Name, err, name)
		}
	}
	high, _ := pcs.Get(ctx, "high", metav1.GetOptions{})
	high.Value = 2
	if _, err := pcs.Update(ctx, high, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "value") {
		t.Errorf("changing the value = %v, want Invalid naming value", err)
	}
}
