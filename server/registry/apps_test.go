package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func webTemplate() corev1.PodTemplateSpec {
	return *testRC().Spec.Template
}

func validRS() *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: webTemplate(),
		},
	}
	replicaSetResource.PrepareForCreate(rs)
	return rs
}

func validDeployment() *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: webTemplate(),
		},
	}
	deploymentResource.PrepareForCreate(d)
	return d
}

func TestRSValidation(t *testing.T) {
	runValidation(t, replicaSetResource, validRS, []validationCase[*appsv1.ReplicaSet]{
		{name: "valid"},
		{"replicas not negative", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptrTo[int32](-1) },
			[]string{errKey(invalid, "spec.replicas")}},
		{"selector required", func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = nil }, []string{errKey(required, "spec.selector")}},
		{"selector not empty", func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = &metav1.LabelSelector{} },
			[]string{errKey(invalid, "spec.selector")}},
		{"selector matches template", func(rs *appsv1.ReplicaSet) { rs.Spec.Selector.MatchLabels["app"] = "api" },
			[]string{errKey(invalid, "spec.template.metadata.labels")}},
		{"set-based selector matches", func(rs *appsv1.ReplicaSet) {
			rs.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"front", "back"}}}
		}, nil},
		{"set-based selector does not match", func(rs *appsv1.ReplicaSet) {
			rs.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"front"}}}
		}, []string{errKey(invalid, "spec.template.metadata.labels")}},
		{"bad operator", func(rs *appsv1.ReplicaSet) {
			rs.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}
		}, []string{errKey(invalid, "spec.selector.matchExpressions[0].operator")}},
		{"restartPolicy Always", func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{errKey(notSupported, "spec.template.spec.restartPolicy")}},
	})
}

func TestRSSelectorImmutable(t *testing.T) {
	runUpdate(t, replicaSetResource, false, validRS, []validationCase[*appsv1.ReplicaSet]{
		{"scale", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptrTo[int32](5) }, nil},
		{"selector", func(rs *appsv1.ReplicaSet) { rs.Spec.Selector.MatchLabels["tier"] = "front" },
			[]string{errKey(invalid, "spec.selector")}},
	})
}

func TestRSScaleAndRow(t *testing.T) {
	rs := stored(replicaSetResource, validRS())
	rs.Status.Replicas, rs.Status.ReadyReplicas = 1, 1
	spec, status, sel := replicaSetResource.Replicas(rs)
	if spec != 1 || status != 1 || sel != "app=web" {
		t.Errorf("Replicas() = %d, %d, %q; want 1, 1, app=web", spec, status, sel)
	}
	replicaSetResource.SetReplicas(rs, 4)
	row := replicaSetResource.Row(rs)
	if diff := cmp.Diff([]interface{}{"web", int64(4), int64(1), int64(1)}, row[:4]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if len(row) != len(replicaSetResource.Columns) {
		t.Errorf("%d cells for %d columns", len(row), len(replicaSetResource.Columns))
	}
}

func TestDeploymentDefaults(t *testing.T) {
	d := validDeployment()
	quarter := intstr.FromString("25%")
	want := appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &quarter, MaxSurge: &quarter},
	}
	if diff := cmp.Diff(want, d.Spec.Strategy); diff != "" {
		t.Errorf("strategy (-want +got):\n%s", diff)
	}
	if *d.Spec.Replicas != 1 || *d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 || d.Generation != 1 {
		t.Errorf("replicas %d, revisionHistoryLimit %d, progressDeadlineSeconds %d, generation %d; want 1, 10, 600, 1",
			*d.Spec.Replicas, *d.Spec.RevisionHistoryLimit, *d.Spec.ProgressDeadlineSeconds, d.Generation)
	}
	r := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	deploymentResource.PrepareForCreate(r)
	if r.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate got rollingUpdate %+v", r.Spec.Strategy.RollingUpdate)
	}
}

func TestDeploymentValidation(t *testing.T) {
	ru := func(d *appsv1.Deployment) *appsv1.RollingUpdateDeployment { return d.Spec.Strategy.RollingUpdate }
	runValidation(t, deploymentResource, validDeployment, []validationCase[*appsv1.Deployment]{
		{name: "valid"},
		{"selector matches template", func(d *appsv1.Deployment) { d.Spec.Selector.MatchLabels["app"] = "api" },
			[]string{errKey(invalid, "spec.template.metadata.labels")}},
		{"selector required", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, []string{errKey(required, "spec.selector")}},
		{"both zero", func(d *appsv1.Deployment) {
			ru(d).MaxSurge, ru(d).MaxUnavailable = ptrTo(intstr.FromInt32(0)), ptrTo(intstr.FromString("0%"))
		}, []string{errKey(invalid, "spec.strategy.rollingUpdate.maxUnavailable")}},
		{"surge only", func(d *appsv1.Deployment) { ru(d).MaxUnavailable = ptrTo(intstr.FromInt32(0)) }, nil},
		{"surge above 100%", func(d *appsv1.Deployment) { ru(d).MaxSurge = ptrTo(intstr.FromString("150%")) }, nil},
		{"unavailable above 100%", func(d *appsv1.Deployment) { ru(d).MaxUnavailable = ptrTo(intstr.FromString("101%")) },
			[]string{errKey(invalid, "spec.strategy.rollingUpdate.maxUnavailable")}},
		{"bad percentage", func(d *appsv1.Deployment) { ru(d).MaxSurge = ptrTo(intstr.FromString("ten")) },
			[]string{errKey(invalid, "spec.strategy.rollingUpdate.maxSurge")}},
		{"negative surge", func(d *appsv1.Deployment) { ru(d).MaxSurge = ptrTo(intstr.FromInt32(-1)) },
			[]string{errKey(invalid, "spec.strategy.rollingUpdate.maxSurge")}},
		{"recreate with rollingUpdate", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			[]string{errKey(forbidden, "spec.strategy.rollingUpdate")}},
		{"strategy type", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "Blue" },
			[]string{errKey(notSupported, "spec.strategy.type")}},
		{"revisionHistoryLimit", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptrTo[int32](-1) },
			[]string{errKey(invalid, "spec.revisionHistoryLimit")}},
		{"progress deadline after minReady", func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 },
			[]string{errKey(invalid, "spec.progressDeadlineSeconds")}},
		{"replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptrTo[int32](-2) },
			[]string{errKey(invalid, "spec.replicas")}},
	})
}

func TestDeploymentGeneration(t *testing.T) {
	old := stored(deploymentResource, validDeployment())
	d := old.DeepCopy()
	d.Annotations = map[string]string{"kubernetes.io/change-cause": "x"}
	deploymentResource.PrepareForUpdate(d, old)
	if d.Generation != 2 {
		t.Errorf("generation after an annotation change = %d, want 2", d.Generation)
	}
	d2 := d.DeepCopy()
	d2.Status.Replicas = 3
	deploymentResource.PrepareForUpdate(d2, d)
	if d2.Generation != 2 || d2.Status.Replicas != 0 {
		t.Errorf("generation %d, status replicas %d after a status-only change; want 2, 0", d2.Generation, d2.Status.Replicas)
	}
	d.Status = appsv1.DeploymentStatus{Replicas: 1, AvailableReplicas: 2, ReadyReplicas: 2}
	if errs := deploymentResource.ValidateStatusUpdate(d, old); len(errs) != 1 || errs[0].Field != "status.availableReplicas" {
		t.Errorf("status errors = %v, want one on status.availableReplicas", errs)
	}
	row := deploymentResource.Row(stored(deploymentResource, validDeployment()))
	if row[1] != "0/1" || len(row) != len(deploymentResource.Columns) {
		t.Errorf("row = %v, want READY 0/1 and %d cells", row, len(deploymentResource.Columns))
	}
}
