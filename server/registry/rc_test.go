package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func testRC() *corev1.ReplicationController {
	pod := testPod()
	return &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
				Spec:       pod.Spec,
			},
		},
	}
}

func validRC() *corev1.ReplicationController {
	rc := testRC()
	replicationControllerResource.PrepareForCreate(rc)
	return rc
}

func TestRCDefaults(t *testing.T) {
	rc := testRC()
	rc.Status.Replicas = 4
	replicationControllerResource.PrepareForCreate(rc)

	wantSpec := testPod().Spec
	defaultPodSpec(&wantSpec)
	want := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 1,
			Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptrTo[int32](1),
			Selector: map[string]string{"app": "web", "tier": "front"},
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
				Spec:       wantSpec,
			},
		},
	}
	if diff := cmp.Diff(want, rc); diff != "" {
		t.Errorf("PrepareForCreate (-want +got):\n%s", diff)
	}
	if rc.Spec.Template.Spec.Tolerations != nil || rc.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("template got pod admission defaults or missed container defaults: %+v", rc.Spec.Template.Spec)
	}
}

func TestRCDefaultsKeepSetValues(t *testing.T) {
	rc := testRC()
	rc.Labels = map[string]string{"team": "a"}
	rc.Spec.Selector = map[string]string{"app": "web"}
	rc.Spec.Replicas = ptrTo[int32](0)
	replicationControllerResource.PrepareForCreate(rc)
	got := []interface{}{rc.Labels, rc.Spec.Selector, *rc.Spec.Replicas}
	want := []interface{}{map[string]string{"team": "a"}, map[string]string{"app": "web"}, int32(0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(labels, selector, replicas) (-want +got):\n%s", diff)
	}
}

func TestValidateRC(t *testing.T) {
	tmpl := func(rc *corev1.ReplicationController) *corev1.PodSpec { return &rc.Spec.Template.Spec }
	runValidation(t, replicationControllerResource, validRC, []validationCase[*corev1.ReplicationController]{
		{name: "valid"},
		{"zero replicas", func(rc *corev1.ReplicationController) { rc.Spec.Replicas = ptrTo[int32](0) }, nil},
		{"replicas not negative", func(rc *corev1.ReplicationController) { rc.Spec.Replicas = ptrTo[int32](-1) },
			[]string{errKey(invalid, "spec.replicas")}},
		{"replicas required", func(rc *corev1.ReplicationController) { rc.Spec.Replicas = nil }, []string{errKey(required, "spec.replicas")}},
		{"minReadySeconds not negative", func(rc *corev1.ReplicationController) { rc.Spec.MinReadySeconds = -1 },
			[]string{errKey(invalid, "spec.minReadySeconds")}},
		{"selector required", func(rc *corev1.ReplicationController) { rc.Spec.Selector = nil }, []string{errKey(required, "spec.selector")}},
		{"selector labels", func(rc *corev1.ReplicationController) { rc.Spec.Selector = map[string]string{"app/x/y": "web"} },
			[]string{errKey(invalid, "spec.selector"), errKey(invalid, "spec.template.metadata.labels")}},
		{"selector subset of labels", func(rc *corev1.ReplicationController) { rc.Spec.Selector = map[string]string{"app": "web"} }, nil},
		{"selector matches template", func(rc *corev1.ReplicationController) { rc.Spec.Selector = map[string]string{"app": "api"} },
			[]string{errKey(invalid, "spec.template.metadata.labels")}},
		{"template required", func(rc *corev1.ReplicationController) { rc.Spec.Template = nil }, []string{errKey(required, "spec.template")}},
		{"template labels", func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Labels["bad key"] = "x"
		}, []string{errKey(invalid, "spec.template.metadata.labels")}},
		{"template pod spec", func(rc *corev1.ReplicationController) { tmpl(rc).Containers[0].Image = "" },
			[]string{errKey(required, "spec.template.spec.containers[0].image")}},
		{"template containers", func(rc *corev1.ReplicationController) { tmpl(rc).Containers = nil },
			[]string{errKey(required, "spec.template.spec.containers")}},
		{"template restartPolicy Always", func(rc *corev1.ReplicationController) { tmpl(rc).RestartPolicy = corev1.RestartPolicyOnFailure },
			[]string{errKey(notSupported, "spec.template.spec.restartPolicy")}},
		{"template without deadline", func(rc *corev1.ReplicationController) { tmpl(rc).ActiveDeadlineSeconds = ptrTo[int64](10) },
			[]string{errKey(invalid, "spec.template.spec.activeDeadlineSeconds")}},
		{"name a DNS subdomain", func(rc *corev1.ReplicationController) { rc.Name = "Web" }, []string{errKey(invalid, "metadata.name")}},
	})
}

func TestRCUpdate(t *testing.T) {
	base := func() *corev1.ReplicationController {
		rc := stored(replicationControllerResource, testRC())
		rc.Status = corev1.ReplicationControllerStatus{Replicas: 1, ReadyReplicas: 1, ObservedGeneration: 1}
		return rc
	}
	runUpdate(t, replicationControllerResource, false, base, []validationCase[*corev1.ReplicationController]{
		{"scale", func(rc *corev1.ReplicationController) { rc.Spec.Replicas = ptrTo[int32](5) }, nil},
		{"template image", func(rc *corev1.ReplicationController) { rc.Spec.Template.Spec.Containers[0].Image = "nginx:2" }, nil},
		{"selector must still match", func(rc *corev1.ReplicationController) { rc.Spec.Selector = map[string]string{"app": "api"} },
			[]string{errKey(invalid, "spec.template.metadata.labels")}},
	})

	old := base()
	rc := old.DeepCopy()
	rc.Status = corev1.ReplicationControllerStatus{}
	replicationControllerResource.SetReplicas(rc, 3)
	replicationControllerResource.PrepareForUpdate(rc, old)
	got := []interface{}{rc.Status, rc.Generation}
	want := []interface{}{old.Status, int64(2)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after scaling update (status, generation) (-want +got):\n%s", diff)
	}
}

func TestRCStatusUpdate(t *testing.T) {
	base := func() *corev1.ReplicationController { return stored(replicationControllerResource, testRC()) }
	st := func(rc *corev1.ReplicationController) *corev1.ReplicationControllerStatus { return &rc.Status }
	runUpdate(t, replicationControllerResource, true, base, []validationCase[*corev1.ReplicationController]{
		{"counts", func(rc *corev1.ReplicationController) {
			rc.Spec.Replicas = ptrTo[int32](9) // ignored
			rc.Status = corev1.ReplicationControllerStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 1}
		}, nil},
		{"replicas not negative", func(rc *corev1.ReplicationController) { st(rc).Replicas = -1 }, []string{errKey(invalid, "status.replicas")}},
		{"ready at most replicas", func(rc *corev1.ReplicationController) { st(rc).ReadyReplicas = 1 }, []string{errKey(invalid, "status.readyReplicas")}},
		{"fully labeled at most replicas", func(rc *corev1.ReplicationController) { st(rc).FullyLabeledReplicas = 1 },
			[]string{errKey(invalid, "status.fullyLabeledReplicas")}},
		{"available at most ready", func(rc *corev1.ReplicationController) { st(rc).Replicas, st(rc).AvailableReplicas = 2, 1 },
			[]string{errKey(invalid, "status.availableReplicas")}},
		{"observedGeneration not negative", func(rc *corev1.ReplicationController) { st(rc).ObservedGeneration = -1 },
			[]string{errKey(invalid, "status.observedGeneration")}},
	})

	old := base()
	rc := old.DeepCopy()
	rc.Spec.Replicas = ptrTo[int32](9)
	rc.Status.Replicas = 1
	replicationControllerResource.PrepareForStatusUpdate(rc, old)
	if *rc.Spec.Replicas != 1 || rc.Status.Replicas != 1 || rc.Generation != 1 {
		t.Errorf("after status update: spec.replicas %d status.replicas %d generation %d, want 1 1 1",
			*rc.Spec.Replicas, rc.Status.Replicas, rc.Generation)
	}
}

func TestRCScale(t *testing.T) {
	rc := validRC()
	rc.Status.Replicas = 1
	replicationControllerResource.SetReplicas(rc, 4)
	spec, status, selector := replicationControllerResource.Replicas(rc)
	got := []interface{}{spec, status, selector}
	want := []interface{}{int32(4), int32(1), "app=web,tier=front"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Replicas() (-want +got):\n%s", diff)
	}
}

func TestRCFieldSetAndRow(t *testing.T) {
	rc := validRC()
	rc.CreationTimestamp = ago(26 * time.Hour)
	rc.Status = corev1.ReplicationControllerStatus{Replicas: 2, ReadyReplicas: 1}
	rc.Spec.Replicas = ptrTo[int32](3)
	rc.Spec.Template.Spec.Containers = append(rc.Spec.Template.Spec.Containers, corev1.Container{Name: "log", Image: "fluent-bit:3"})

	wantFields := fields.Set{"metadata.name": "web", "metadata.namespace": "default", "status.replicas": "2"}
	if diff := cmp.Diff(wantFields, replicationControllerResource.FieldSet(rc)); diff != "" {
		t.Errorf("FieldSet (-want +got):\n%s", diff)
	}
	wantRow := []interface{}{"web", int64(3), int64(2), int64(1), "26h", "nginx,log", "nginx:1.27,fluent-bit:3", "app=web,tier=front"}
	if diff := cmp.Diff(wantRow, rcRow(rc, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
