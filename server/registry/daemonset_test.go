package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validDS() *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: webTemplate(),
		},
	}
	daemonSetResource.PrepareForCreate(ds)
	return ds
}

func TestDaemonSetDefaults(t *testing.T) {
	ds := validDS()
	want := appsv1.DaemonSetUpdateStrategy{
		Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxUnavailable: ptrTo(intstr.FromInt32(1)), MaxSurge: ptrTo(intstr.FromInt32(0)),
		},
	}
	if diff := cmp.Diff(want, ds.Spec.UpdateStrategy); diff != "" {
		t.Errorf("updateStrategy (-want +got):\n%s", diff)
	}
	if *ds.Spec.RevisionHistoryLimit != 10 || ds.Generation != 1 || ds.Annotations[appsv1.DeprecatedTemplateGeneration] != "1" {
		t.Errorf("revisionHistoryLimit %d, generation %d, template generation %q; want 10, 1, 1",
			*ds.Spec.RevisionHistoryLimit, ds.Generation, ds.Annotations[appsv1.DeprecatedTemplateGeneration])
	}
	od := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}}}
	daemonSetResource.PrepareForCreate(od)
	if od.Spec.UpdateStrategy.RollingUpdate != nil {
		t.Errorf("OnDelete got rollingUpdate %+v", od.Spec.UpdateStrategy.RollingUpdate)
	}
}

func TestDaemonSetValidation(t *testing.T) {
	ru := func(ds *appsv1.DaemonSet) *appsv1.RollingUpdateDaemonSet { return ds.Spec.UpdateStrategy.RollingUpdate }
	runValidation(t, daemonSetResource, validDS, []validationCase[*appsv1.DaemonSet]{
		{name: "valid"},
		{"selector required", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = nil }, []string{errKey(required, "spec.selector")}},
		{"selector not empty", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = &metav1.LabelSelector{} },
			[]string{errKey(invalid, "spec.selector")}},
		{"selector matches template", func(ds *appsv1.DaemonSet) { ds.Spec.Selector.MatchLabels["app"] = "api" },
			[]string{errKey(invalid, "spec.template.metadata.labels")}},
		{"restartPolicy Always", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			[]string{errKey(notSupported, "spec.template.spec.restartPolicy")}},
		{"no activeDeadlineSeconds", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.ActiveDeadlineSeconds = ptrTo[int64](5) },
			[]string{errKey(invalid, "spec.template.spec.activeDeadlineSeconds")}},
		{"minReadySeconds", func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = -1 },
			[]string{errKey(invalid, "spec.minReadySeconds")}},
		{"revisionHistoryLimit", func(ds *appsv1.DaemonSet) { ds.Spec.RevisionHistoryLimit = ptrTo[int32](-1) },
			[]string{errKey(invalid, "spec.revisionHistoryLimit")}},
		{"strategy type", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Recreate" },
			[]string{errKey(notSupported, "spec.updateStrategy.type")}},
		{"OnDelete", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		}, nil},
		{"rollingUpdate required", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.RollingUpdate = nil },
			[]string{errKey(required, "spec.updateStrategy.rollingUpdate")}},
		{"surge only", func(ds *appsv1.DaemonSet) {
			ru(ds).MaxSurge, ru(ds).MaxUnavailable = ptrTo(intstr.FromString("20%")), ptrTo(intstr.FromInt32(0))
		}, nil},
		{"surge and unavailable", func(ds *appsv1.DaemonSet) { ru(ds).MaxSurge = ptrTo(intstr.FromInt32(1)) },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate.maxSurge")}},
		{"both zero", func(ds *appsv1.DaemonSet) { ru(ds).MaxUnavailable = ptrTo(intstr.FromString("0%")) },
			[]string{errKey(required, "spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"unavailable above 100%", func(ds *appsv1.DaemonSet) { ru(ds).MaxUnavailable = ptrTo(intstr.FromString("110%")) },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"surge above 100%", func(ds *appsv1.DaemonSet) {
			ru(ds).MaxSurge, ru(ds).MaxUnavailable = ptrTo(intstr.FromString("101%")), ptrTo(intstr.FromInt32(0))
		}, []string{errKey(invalid, "spec.updateStrategy.rollingUpdate.maxSurge")}},
		{"negative unavailable", func(ds *appsv1.DaemonSet) { ru(ds).MaxUnavailable = ptrTo(intstr.FromInt32(-1)) },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"bad percentage", func(ds *appsv1.DaemonSet) { ru(ds).MaxUnavailable = ptrTo(intstr.FromString("one")) },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable")}},
	})
}

func TestDaemonSetUpdate(t *testing.T) {
	old := func() *appsv1.DaemonSet { return stored(daemonSetResource, validDS()) }
	runUpdate(t, daemonSetResource, false, old, []validationCase[*appsv1.DaemonSet]{
		{"image", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"selector immutable", func(ds *appsv1.DaemonSet) { ds.Spec.Selector.MatchLabels["tier"] = "front" },
			[]string{errKey(invalid, "spec.selector")}},
	})
	runUpdate(t, daemonSetResource, true, old, []validationCase[*appsv1.DaemonSet]{
		{"counts", func(ds *appsv1.DaemonSet) { ds.Status.DesiredNumberScheduled, ds.Status.NumberReady = 2, 1 }, nil},
		{"negative", func(ds *appsv1.DaemonSet) { ds.Status.NumberMisscheduled = -1 },
			[]string{errKey(invalid, "status.numberMisscheduled")}},
	})
}

// TestDaemonSetGenerations: a change of the template bumps both the
// generation and the template generation; another spec change only the
// generation; a client cannot set the template generation.
func TestDaemonSetGenerations(t *testing.T) {
	old := stored(daemonSetResource, validDS())
	for _, tc := range []struct {
		name        string
		mutate      func(*appsv1.DaemonSet)
		gen         int64
		templateGen string
	}{
		{"metadata", func(ds *appsv1.DaemonSet) { ds.Labels = map[string]string{"a": "b"} }, 1, "1"},
		{"minReadySeconds", func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = 5 }, 2, "1"},
		{"template", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, 2, "2"},
		{"client sets template generation", func(ds *appsv1.DaemonSet) { ds.Annotations[appsv1.DeprecatedTemplateGeneration] = "9" }, 1, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := old.DeepCopy()
			tc.mutate(ds)
			daemonSetResource.PrepareForUpdate(ds, old)
			if ds.Generation != tc.gen || ds.Annotations[appsv1.DeprecatedTemplateGeneration] != tc.templateGen {
				t.Errorf("generation %d, template generation %q; want %d, %q",
					ds.Generation, ds.Annotations[appsv1.DeprecatedTemplateGeneration], tc.gen, tc.templateGen)
			}
		})
	}
}

func TestDaemonSetCollisionCountOnlyGrows(t *testing.T) {
	old := stored(daemonSetResource, validDS())
	old.Status.CollisionCount = ptrTo[int32](2)
	ds := old.DeepCopy()
	ds.Status.CollisionCount = ptrTo[int32](1)
	daemonSetResource.PrepareForStatusUpdate(ds, old)
	if diff := cmp.Diff([]string{errKey(invalid, "status.collisionCount")}, errorKeys(daemonSetResource.ValidateStatusUpdate(ds, old))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestDaemonSetRow(t *testing.T) {
	ds := stored(daemonSetResource, validDS())
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 2, NumberReady: 1, UpdatedNumberScheduled: 2, NumberAvailable: 1}
	row := daemonSetResource.Row(ds)
	want := []interface{}{"agent", int64(3), int64(2), int64(1), int64(2), int64(1), "disk=ssd"}
	if diff := cmp.Diff(want, row[:7]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if len(row) != len(daemonSetResource.Columns) {
		t.Errorf("%d cells for %d columns", len(row), len(daemonSetResource.Columns))
	}
	ds.Spec.Template.Spec.NodeSelector = nil
	if got := daemonSetResource.Row(ds)[6]; got != "<none>" {
		t.Errorf("node selector cell without a selector = %q, want <none>", got)
	}
}
