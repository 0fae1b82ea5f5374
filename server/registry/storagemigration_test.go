package registry

import (
	"slices"
	"testing"

	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validMigration() *storagemigrationv1.StorageVersionMigration {
	m := &storagemigrationv1.StorageVersionMigration{
		ObjectMeta: metav1.ObjectMeta{Name: "deployments"},
		Spec:       storagemigrationv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Group: "apps", Resource: "deployments"}},
	}
	storageVersionMigrationResource.PrepareForCreate(m)
	return m
}

func TestValidateStorageVersionMigration(t *testing.T) {
	type svm = storagemigrationv1.StorageVersionMigration
	cond := func(typ string, status metav1.ConditionStatus) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: "Test", LastTransitionTime: metav1.Now()}
	}
	runValidation(t, storageVersionMigrationResource, validMigration, []validationCase[*svm]{
		{name: "valid"},
		{"core group", func(m *svm) { m.Spec.Resource.Group = "" }, nil},
		{"no resource", func(m *svm) { m.Spec.Resource.Resource = "" }, []string{errKey(required, "spec.resource.resource")}},
		{"bad resource", func(m *svm) { m.Spec.Resource.Resource = "Deployments" }, []string{errKey(invalid, "spec.resource.resource")}},
		{"bad group", func(m *svm) { m.Spec.Resource.Group = "-apps" }, []string{errKey(invalid, "spec.resource.group")}},
	})
	runUpdate(t, storageVersionMigrationResource, false, validMigration, []validationCase[*svm]{
		{"spec", func(m *svm) { m.Spec.Resource.Resource = "replicasets" }, []string{errKey(invalid, "spec")}},
		{"labels", func(m *svm) { m.Labels = map[string]string{"a": "b"} }, nil},
	})
	runUpdate(t, storageVersionMigrationResource, true, validMigration, []validationCase[*svm]{
		{"condition", func(m *svm) { m.Status.Conditions = []metav1.Condition{cond("Running", metav1.ConditionTrue)} }, nil},
		{"condition without reason", func(m *svm) {
			m.Status.Conditions = []metav1.Condition{{Type: "Running", Status: metav1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		}, []string{errKey(required, "status.conditions[0].reason")}},
		{"both outcomes", func(m *svm) {
			m.Status.Conditions = []metav1.Condition{cond("Succeeded", metav1.ConditionTrue), cond("Failed", metav1.ConditionTrue)}
		}, []string{errKey(invalid, "status.conditions")}},
		{"bad resource version", func(m *svm) { m.Status.ResourceVersion = "01" }, []string{errKey(invalid, "status.resourceVersion")}},
	})

	// Once set, the resourceVersion and a true outcome stay.
	old := validMigration()
	old.Status = storagemigrationv1.StorageVersionMigrationStatus{
		ResourceVersion: "42", Conditions: []metav1.Condition{cond("Succeeded", metav1.ConditionTrue)},
	}
	m := old.DeepCopy()
	m.Status = storagemigrationv1.StorageVersionMigrationStatus{ResourceVersion: "43"}
	want := []string{errKey(invalid, "status.resourceVersion"), errKey(invalid, "status.conditions")}
	if got := errorKeys(storageVersionMigrationResource.ValidateStatusUpdate(m, old)); !slices.Equal(got, want) {
		t.Errorf("status update undoing the outcome = %v, want %v", got, want)
	}
}
