package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validPodTemplate() *corev1.PodTemplate {
	pod := testPod()
	return &corev1.PodTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Template:   corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: pod.Labels}, Spec: pod.Spec},
	}
}

func TestPodTemplateDefaults(t *testing.T) {
	pt := validPodTemplate()
	podTemplateResource.PrepareForCreate(pt)
	spec := pt.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyAlways || spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent || pt.Generation != 1 {
		t.Errorf("restartPolicy %q, pull policy %q, generation %d; want the pod defaults and 1",
			spec.RestartPolicy, spec.Containers[0].ImagePullPolicy, pt.Generation)
	}
}

func TestValidatePodTemplate(t *testing.T) {
	base := func() *corev1.PodTemplate {
		pt := validPodTemplate()
		podTemplateResource.PrepareForCreate(pt)
		return pt
	}
	runValidation(t, podTemplateResource, base, []validationCase[*corev1.PodTemplate]{
		{name: "valid"},
		{"restart never", func(pt *corev1.PodTemplate) { pt.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }, nil},
		{"no containers", func(pt *corev1.PodTemplate) { pt.Template.Spec.Containers = nil },
			[]string{errKey(required, "template.spec.containers")}},
		{"no image", func(pt *corev1.PodTemplate) { pt.Template.Spec.Containers[0].Image = "" },
			[]string{errKey(required, "template.spec.containers[0].image")}},
		{"bad label", func(pt *corev1.PodTemplate) { pt.Template.Labels = map[string]string{"a b": "c"} },
			[]string{errKey(invalid, "template.metadata.labels")}},
		{"ephemeral containers", func(pt *corev1.PodTemplate) {
			pt.Template.Spec.EphemeralContainers = []corev1.EphemeralContainer{{}}
		}, []string{errKey(forbidden, "template.spec.ephemeralContainers")}},
	})
}

func TestPodTemplateGeneration(t *testing.T) {
	old := stored(podTemplateResource, validPodTemplate())
	same := old.DeepCopy()
	same.Labels = map[string]string{"x": "y"}
	podTemplateResource.PrepareForUpdate(same, old)
	changed := old.DeepCopy()
	changed.Template.Spec.Containers[0].Image = "nginx:1.28"
	podTemplateResource.PrepareForUpdate(changed, old)
	if same.Generation != 1 || changed.Generation != 2 {
		t.Errorf("generation after a label change %d, after a template change %d; want 1 and 2", same.Generation, changed.Generation)
	}
	if errs := podTemplateResource.ValidateUpdate(changed, old); len(errs) != 0 {
		t.Errorf("ValidateUpdate = %v, want no error", errs)
	}
}

func TestPodTemplateRow(t *testing.T) {
	pt := validPodTemplate()
	pt.Template.Spec.Containers = append(pt.Template.Spec.Containers, corev1.Container{Name: "log", Image: "busybox"})
	want := []interface{}{"web", "nginx,log", "nginx:1.27,busybox", "app=web"}
	if diff := cmp.Diff(want, podTemplateRow(pt, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if len(podTemplateColumns) != 4 || podTemplateColumns[3].Name != "Pod Labels" {
		t.Errorf("columns = %v, want Name, Containers, Images, Pod Labels", podTemplateColumns)
	}
}
