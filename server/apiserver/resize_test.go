package apiserver

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func burstablePod(name string) *corev1.Pod {
	p := testPod(name, nil)
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("35Mi")},
		Limits:   corev1.ResourceList{"example.com/dongle": resource.MustParse("1")},
	}
	p.Spec.Containers[0].Resources.Requests["example.com/dongle"] = resource.MustParse("1")
	return p
}

// Container resources change through pods/NAME/resize, by patch or
// update: the generation moves on, the rest of the spec stays.
func TestResizeSubresource(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx, burstablePod("target"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"containers": []map[string]any{{
		"name":      "main",
		"resources": map[string]any{"requests": map[string]string{"cpu": "25m"}, "limits": map[string]string{"cpu": "35m"}},
	}}}})
	patched, err := pods.Patch(ctx, "target", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "resize")
	if err != nil {
		t.Fatalf("Patch(resize) = %v", err)
	}
	res := patched.Spec.Containers[0].Resources
	if q := res.Requests[corev1.ResourceCPU]; q.String() != "25m" {
		t.Errorf("cpu request after the patch = %s, want 25m", q.String())
	}
	if q := res.Limits[corev1.ResourceCPU]; q.String() != "35m" {
		t.Errorf("cpu limit after the patch = %s, want 35m", q.String())
	}
	if patched.Generation != pod.Generation+1 {
		t.Errorf("generation %d after a resize, want %d", patched.Generation, pod.Generation+1)
	}

	var got corev1.Pod
	if err := ts.client.CoreV1().RESTClient().Get().Namespace("default").Resource("pods").Name("target").
		SubResource("resize").Do(ctx).Into(&got); err != nil || got.Generation != patched.Generation {
		t.Fatalf("GET resize = %v, generation %d; want %d", err, got.Generation, patched.Generation)
	}

	// An update may change resources; what else it changes is ignored.
	got.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("40Mi")
	got.Spec.Containers[0].Image = "busybox:other"
	got.Spec.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
	updated, err := pods.UpdateResize(ctx, "target", &got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateResize = %v", err)
	}
	c := updated.Spec.Containers[0]
	if q := c.Resources.Requests[corev1.ResourceMemory]; q.String() != "40Mi" || c.Image != "busybox:1.36" ||
		len(c.ResizePolicy) != 1 || updated.Generation != pod.Generation+2 {
		t.Errorf("after the update: memory %s, image %q, resize policy %v, generation %d; want 40Mi, busybox:1.36, one policy, %d",
			q.String(), c.Image, c.ResizePolicy, updated.Generation, pod.Generation+2)
	}

	bad := []struct {
		name   string
		mutate func(c *corev1.Container)
		field  string
		detail string
	}{
		{"request removed", func(c *corev1.Container) { delete(c.Resources.Requests, corev1.ResourceMemory) },
			"spec.containers[0].resources.requests", "resource requests cannot be removed"},
		{"limit removed", func(c *corev1.Container) { delete(c.Resources.Limits, corev1.ResourceCPU) },
			"spec.containers[0].resources.limits", "resource limits cannot be removed"},
		{"extended resource", func(c *corev1.Container) {
			c.Resources.Requests["example.com/dongle"] = resource.MustParse("2")
			c.Resources.Limits["example.com/dongle"] = resource.MustParse("2")
		}, "spec.containers[0].resources", "only cpu and memory resources are mutable"},
		{"request above limit", func(c *corev1.Container) { c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse("50m") },
			"spec.containers[0].resources.requests[cpu]", "must be less than or equal to cpu limit"},
		{"qos class", func(c *corev1.Container) {
			c.Resources.Limits = corev1.ResourceList{"example.com/dongle": resource.MustParse("1")}
			c.Resources.Limits[corev1.ResourceCPU] = c.Resources.Requests[corev1.ResourceCPU]
			c.Resources.Limits[corev1.ResourceMemory] = c.Resources.Requests[corev1.ResourceMemory]
		}, "spec", "Pod QOS Class may not change as a result of resizing"},
		{"resize policy resource", func(c *corev1.Container) {
			c.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: "storage", RestartPolicy: corev1.NotRequired}}
		}, "spec.containers[0].resizePolicy[0].resourceName", "Unsupported value"},
	}
	for _, tc := range bad {
		p := updated.DeepCopy()
		tc.mutate(&p.Spec.Containers[0])
		_, err := pods.UpdateResize(ctx, "target", p, metav1.UpdateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.detail) {
			t.Errorf("%s: UpdateResize = %v, want Invalid naming %s: %s", tc.name, err, tc.field, tc.detail)
		}
	}
	after, err := pods.Get(ctx, "target", metav1.GetOptions{})
	if err != nil || after.ResourceVersion != updated.ResourceVersion {
		t.Errorf("after the refused resizes: %v, resourceVersion %s, want %s unchanged", err, after.ResourceVersion, updated.ResourceVersion)
	}

	// The main resource does not change resources.
	p := updated.DeepCopy()
	p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("30m")
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("Update of the pod changing a cpu request = %v, want Invalid", err)
	}
}
