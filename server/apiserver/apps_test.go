package apiserver

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testDeployment() *appsv1.Deployment {
	lbls := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
			},
		},
	}
}

// causeFields returns the fields a 422 names.
func causeFields(t *testing.T, err error) []string {
	t.Helper()
	st, ok := err.(apierrors.APIStatus)
	if !ok || !apierrors.IsInvalid(err) || st.Status().Details == nil {
		t.Fatalf("error = %v, want 422 Invalid with details", err)
	}
	var fields []string
	for _, c := range st.Status().Details.Causes {
		fields = append(fields, c.Field)
	}
	return fields
}

func TestDeploymentBadInput(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ds := ts.client.AppsV1().Deployments("default")
	zero := intstr.FromInt32(0)
	cases := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		field  string
	}{
		{"selector does not match", func(d *appsv1.Deployment) { d.Spec.Selector.MatchLabels = map[string]string{"app": "api"} },
			"spec.template.metadata.labels"},
		{"surge and unavailable 0", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &zero, MaxUnavailable: &zero}
		}, "spec.strategy.rollingUpdate.maxUnavailable"},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, "spec.selector"},
	}
	for _, tc := range cases {
		d := testDeployment()
		tc.mutate(d)
		_, err := ds.Create(ctx, d, metav1.CreateOptions{})
		if got := causeFields(t, err); !slices.Contains(got, tc.field) {
			t.Errorf("%s: causes %v, want %s", tc.name, got, tc.field)
		}
	}
	if list, err := ds.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Errorf("List after refused creates = %v, %v; want none", list, err)
	}
}

func TestDeploymentScaleAndDiscovery(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ds := ts.client.AppsV1().Deployments("default")
	d, err := ds.Create(ctx, testDeployment(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Errorf("defaults not applied: %+v", d.Spec)
	}
	scale, err := ds.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil || scale.Spec.Replicas != 1 || scale.Status.Selector != "app=web" {
		t.Fatalf("GetScale = %+v, %v; want 1 replica, selector app=web", scale, err)
	}
	scale.Spec.Replicas = 5
	if _, err := ds.UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d, err = ds.Get(ctx, "web", metav1.GetOptions{}); err != nil || *d.Spec.Replicas != 5 || d.Generation != 2 {
		t.Errorf("after scale: %v, replicas %d, generation %d; want 5, 2", err, *d.Spec.Replicas, d.Generation)
	}
	list, err := ts.client.Discovery().ServerResourcesForGroupVersion("apps/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.APIResources {
		names = append(names, r.Name)
	}
	for _, want := range []string{"deployments", "deployments/status", "deployments/scale", "replicasets", "replicasets/status", "replicasets/scale",
		"statefulsets", "statefulsets/status", "statefulsets/scale"} {
		if !slices.Contains(names, want) {
			t.Errorf("apps/v1 discovery = %v, missing %s", names, want)
		}
	}
}

// kubectl rollout restart and pause send strategic merge patches.
func TestDeploymentRolloutPatches(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ds := ts.client.AppsV1().Deployments("default")
	if _, err := ds.Create(ctx, testDeployment(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	restart := `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}`
	d, err := ds.Patch(ctx, "web", types.StrategicMergePatchType, []byte(restart), metav1.PatchOptions{})
	if err != nil || d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" || d.Generation != 2 {
		t.Fatalf("restart patch = %v, %v; want the template annotation and generation 2", d, err)
	}
	if d, err = ds.Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{}); err != nil || !d.Spec.Paused {
		t.Fatalf("pause patch = %v, %v", d, err)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 || d.Spec.Template.Labels["app"] != "web" {
		t.Errorf("pause patch changed the template: %+v", d.Spec.Template)
	}
}
