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

func testDaemonSet() *appsv1.DaemonSet {
	d := testDeployment()
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec:       appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
}

func TestDaemonSetBadInput(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	dss := ts.client.AppsV1().DaemonSets("default")
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	cases := []struct {
		name   string
		mutate func(*appsv1.DaemonSet)
		field  string
	}{
		{"selector does not match", func(d *appsv1.DaemonSet) { d.Spec.Selector.MatchLabels = map[string]string{"app": "api"} },
			"spec.template.metadata.labels"},
		{"surge and unavailable", func(d *appsv1.DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: &one, MaxUnavailable: &one}
		}, "spec.updateStrategy.rollingUpdate.maxSurge"},
		{"surge without unavailable 0", func(d *appsv1.DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: &one}
		}, "spec.updateStrategy.rollingUpdate.maxSurge"},
		{"both 0", func(d *appsv1.DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: &zero, MaxUnavailable: &zero}
		}, "spec.updateStrategy.rollingUpdate.maxUnavailable"},
		{"restart policy", func(d *appsv1.DaemonSet) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			"spec.template.spec.restartPolicy"},
	}
	for _, tc := range cases {
		d := testDaemonSet()
		tc.mutate(d)
		_, err := dss.Create(ctx, d, metav1.CreateOptions{})
		if got := causeFields(t, err); !slices.Contains(got, tc.field) {
			t.Errorf("%s: causes %v, want %s", tc.name, got, tc.field)
		}
	}
	if list, err := dss.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Errorf("List after refused creates = %v, %v; want none", list, err)
	}
}

// TestDaemonSetStatusAndDiscovery: defaults, the status subresource
// (written by update and by merge patch, as upstream's status spec does)
// and apps/v1 discovery.
func TestDaemonSetStatusAndDiscovery(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	dss := ts.client.AppsV1().DaemonSets("default")
	d, err := dss.Create(ctx, testDaemonSet(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ru := d.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable.String() != "1" || ru.MaxSurge.String() != "0" || *d.Spec.RevisionHistoryLimit != 10 ||
		d.Annotations[appsv1.DeprecatedTemplateGeneration] != "1" {
		t.Errorf("defaults not applied: %+v, annotations %v", d.Spec, d.Annotations)
	}
	d.Status.Conditions = []appsv1.DaemonSetCondition{{Type: "StatusUpdate", Status: corev1.ConditionTrue, Reason: "E2E"}}
	d.Spec.MinReadySeconds = 30 // ignored by a status write
	if d, err = dss.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil || len(d.Status.Conditions) != 1 || d.Spec.MinReadySeconds != 0 {
		t.Fatalf("UpdateStatus = %v, %v; want the condition and no spec change", d, err)
	}
	patch := `{"status":{"conditions":[{"type":"StatusPatched","status":"True"}]}}`
	if d, err = dss.Patch(ctx, "agent", types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil ||
		len(d.Status.Conditions) != 1 || d.Status.Conditions[0].Type != "StatusPatched" {
		t.Fatalf("status patch = %v, %v", d, err)
	}
	groups, err := ts.client.Discovery().ServerResourcesForGroupVersion("apps/v1")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range groups.APIResources {
		if r.Name == "daemonsets" {
			found = slices.Equal(r.ShortNames, []string{"ds"}) && slices.Contains(r.Categories, "all")
		}
	}
	if !found {
		t.Errorf("apps/v1 discovery lacks daemonsets with short name ds in category all: %+v", groups.APIResources)
	}
}
