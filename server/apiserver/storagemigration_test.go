package apiserver

import (
	"testing"

	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// TestStorageVersionMigrationAPI drives storagemigration.k8s.io/v1 as the
// conformance CRUD spec does: spec and status writes by update and by
// every patch type, list by label and delete collection.
func TestStorageVersionMigrationAPI(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	c := ts.client.StoragemigrationV1().StorageVersionMigrations()
	const labelPatch = `{"metadata":{"labels":{"test.storagemigration.example.com":"test"}}}`
	const condition = `{"type":"TestCondition","status":"True","reason":"TestReason","message":"TestMessage","lastTransitionTime":"2026-01-01T00:00:00Z"}`

	m, err := c.Create(ctx, &storagemigrationv1.StorageVersionMigration{
		ObjectMeta: metav1.ObjectMeta{Name: "foo"},
		Spec:       storagemigrationv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Resource: "foo"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	m.Spec.Resource.Resource = "bar"
	if _, err := c.Update(ctx, m, metav1.UpdateOptions{}); !hasFieldCause(err, "spec") {
		t.Errorf("update of the spec: %v, want Invalid on spec", err)
	}
	for _, p := range []struct {
		typ         types.PatchType
		spec, state string
	}{
		{types.ApplyPatchType, `{"apiVersion":"storagemigration.k8s.io/v1","kind":"StorageVersionMigration","metadata":{"name":"foo","labels":{"test.storagemigration.example.com":"test"}}}`,
			`{"apiVersion":"storagemigration.k8s.io/v1","kind":"StorageVersionMigration","metadata":{"name":"foo"},"status":{"conditions":[` + condition + `]}}`},
		{types.StrategicMergePatchType, labelPatch, `{"status":{"conditions":[` + condition + `]}}`},
		{types.MergePatchType, labelPatch, `{"status":{"conditions":[` + condition + `]}}`},
		{types.JSONPatchType, `[{"op":"add","path":"/metadata/labels","value":{"test.storagemigration.example.com":"test"}}]`,
			`[{"op":"add","path":"/status/conditions","value":[` + condition + `]}]`},
	} {
		opts := metav1.PatchOptions{}
		if p.typ == types.ApplyPatchType {
			opts.FieldManager, opts.Force = "test", ptr.To(true)
		}
		got, err := c.Patch(ctx, "foo", p.typ, []byte(p.spec), opts)
		if err != nil || got.Labels["test.storagemigration.example.com"] != "test" {
			t.Errorf("%s patch of the labels = %v, %v", p.typ, got.GetLabels(), err)
		}
		got, err = c.Patch(ctx, "foo", p.typ, []byte(p.state), opts, "status")
		if err != nil || len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != "TestCondition" {
			t.Errorf("%s patch of the status = %+v, %v", p.typ, got.GetName(), err)
			continue
		}
		got.Status.Conditions = nil
		if _, err := c.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("clear the status: %v", err)
		}
		if _, err := c.Patch(ctx, "foo", types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/labels"}]`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("remove the labels: %v", err)
		}
	}
	if _, err := c.Patch(ctx, "foo", types.MergePatchType, []byte(labelPatch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	sel := metav1.ListOptions{LabelSelector: "test.storagemigration.example.com=test"}
	if l, err := c.List(ctx, sel); err != nil || len(l.Items) != 1 {
		t.Fatalf("list = %v, %v; want the migration", l, err)
	}
	if err := c.DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		t.Fatal(err)
	}
	if l, err := c.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("list after delete collection = %d items, %v; want none", len(l.Items), err)
	}
}
