package apiserver

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func debugger(name string) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: name, Image: "busybox:1.36", Command: []string{"sh"}, Stdin: true, TTY: true,
	}}
}

// Ephemeral containers are added through pods/NAME/ephemeralcontainers,
// by patch or update, and only added: the pod's generation moves on with
// each, and nothing else of the pod changes.
func TestEphemeralContainersSubresource(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx, testPod("target", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": []corev1.EphemeralContainer{debugger("debugger")}}})
	patched, err := pods.Patch(ctx, "target", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers")
	if err != nil {
		t.Fatalf("Patch(ephemeralcontainers) = %v", err)
	}
	ecs := patched.Spec.EphemeralContainers
	if len(ecs) != 1 || ecs[0].Name != "debugger" || ecs[0].TerminationMessagePath != corev1.TerminationMessagePathDefault ||
		ecs[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("ephemeral containers after the patch = %+v, want debugger, defaulted", ecs)
	}
	if patched.Generation != pod.Generation+1 {
		t.Errorf("generation %d after adding an ephemeral container, want %d", patched.Generation, pod.Generation+1)
	}

	var got corev1.Pod
	if err := ts.client.CoreV1().RESTClient().Get().Namespace("default").Resource("pods").Name("target").
		SubResource("ephemeralcontainers").Do(ctx).Into(&got); err != nil || len(got.Spec.EphemeralContainers) != 1 {
		t.Fatalf("GET ephemeralcontainers = %v, %d ephemeral containers; want 1", err, len(got.Spec.EphemeralContainers))
	}

	// An update may add one; what else it changes in the spec is ignored.
	got.Spec.EphemeralContainers = append(got.Spec.EphemeralContainers, debugger("debugger2"))
	got.Spec.Containers[0].Image = "busybox:other"
	updated, err := pods.UpdateEphemeralContainers(ctx, "target", &got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateEphemeralContainers = %v", err)
	}
	if len(updated.Spec.EphemeralContainers) != 2 || updated.Spec.Containers[0].Image != "busybox:1.36" || updated.Generation != pod.Generation+2 {
		t.Errorf("after the update: %d ephemeral containers, image %q, generation %d; want 2, busybox:1.36, %d",
			len(updated.Spec.EphemeralContainers), updated.Spec.Containers[0].Image, updated.Generation, pod.Generation+2)
	}

	bad := []struct {
		name   string
		mutate func(p *corev1.Pod)
		field  string
	}{
		{"removed", func(p *corev1.Pod) { p.Spec.EphemeralContainers = p.Spec.EphemeralContainers[:1] }, "spec.ephemeralContainers[1]"},
		{"changed", func(p *corev1.Pod) { p.Spec.EphemeralContainers[0].Image = "other" }, "spec.ephemeralContainers[0]"},
		{"name of a container", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugger("main"))
		}, "spec.ephemeralContainers[2].name"},
		{"with ports", func(p *corev1.Pod) {
			ec := debugger("web")
			ec.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, "spec.ephemeralContainers[2].ports"},
		{"unknown target", func(p *corev1.Pod) {
			ec := debugger("d3")
			ec.TargetContainerName = "nosuch"
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, "spec.ephemeralContainers[2].targetContainerName"},
	}
	for _, tc := range bad {
		p := updated.DeepCopy()
		tc.mutate(p)
		_, err := pods.UpdateEphemeralContainers(ctx, "target", p, metav1.UpdateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: UpdateEphemeralContainers = %v, want Invalid naming %s", tc.name, err, tc.field)
		}
	}

	// The main resource neither creates nor changes them.
	withEC := testPod("early", nil)
	withEC.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugger("debugger")}
	if _, err := pods.Create(ctx, withEC, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.ephemeralContainers") {
		t.Errorf("Create with an ephemeral container = %v, want Invalid", err)
	}
	p := updated.DeepCopy()
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugger("debugger3"))
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("Update of the pod adding an ephemeral container = %v, want Invalid", err)
	}
}
