package apiserver

import (
	"fmt"
	"slices"
	"testing"

	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestResourceAPIDiscovery checks that resource.k8s.io/v1 lists its five
// kinds, with the status subresources of claims and taint rules.
func TestResourceAPIDiscovery(t *testing.T) {
	ts := newTestServer(t)
	list, err := ts.client.Discovery().ServerResourcesForGroupVersion("resource.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range list.APIResources {
		got = append(got, r.Name)
	}
	for _, want := range []string{"deviceclasses", "resourceclaims", "resourceclaims/status", "resourceclaimtemplates",
		"resourceslices", "devicetaintrules", "devicetaintrules/status"} {
		if !slices.Contains(got, want) {
			t.Errorf("resource.k8s.io/v1 resources = %v, want %s among them", got, want)
		}
	}
}

// TestResourceClaimStatus writes a claim's status the ways a driver or
// scheduler does (update and every patch type), and removes claims by
// label.
func TestResourceClaimStatus(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	claims := ts.client.ResourceV1().ResourceClaims("default")
	newClaim := func(name string) *resourcev1.ResourceClaim {
		c, err := claims.Create(ctx, &resourcev1.ResourceClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"test": "dra"}},
			Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{
				Name: "req-0", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "dra.example.com"},
			}}}},
			Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{}},
		}, metav1.CreateOptions{FieldValidation: "Strict"})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if c.Status.Allocation != nil {
			t.Errorf("create %s kept the status allocation", name)
		}
		if e := c.Spec.Devices.Requests[0].Exactly; e.AllocationMode != resourcev1.DeviceAllocationModeExactCount || e.Count != 1 {
			t.Errorf("create %s: request defaulted to %s/%d, want ExactCount/1", name, e.AllocationMode, e.Count)
		}
		return c
	}

	c := newClaim("by-update")
	c.Status.Allocation = &resourcev1.AllocationResult{}
	updated, err := claims.UpdateStatus(ctx, c, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if updated.Status.Allocation == nil || updated.ResourceVersion == c.ResourceVersion {
		t.Errorf("update status = allocation %v, resourceVersion %s (was %s); want allocated and a new version",
			updated.Status.Allocation, updated.ResourceVersion, c.ResourceVersion)
	}

	patches := []struct {
		typ  types.PatchType
		body string
	}{
		{types.ApplyPatchType, `{"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaim","metadata":{"name":"%s"},"status":{"allocation":{}}}`},
		{types.StrategicMergePatchType, `{"status":{"allocation":{}}}`},
		{types.MergePatchType, `{"status":{"allocation":{}}}`},
		{types.JSONPatchType, `[{"op":"add","path":"/status/allocation","value":{}}]`},
	}
	for i, p := range patches {
		name := fmt.Sprintf("by-patch-%d", i)
		newClaim(name)
		body := p.body
		if p.typ == types.ApplyPatchType {
			body = fmt.Sprintf(body, name)
		}
		got, err := claims.Patch(ctx, name, p.typ, []byte(body),
			metav1.PatchOptions{FieldManager: "test", Force: ptrIf(p.typ == types.ApplyPatchType), FieldValidation: "Strict"}, "status")
		if err != nil {
			t.Fatalf("%s patch of status: %v", p.typ, err)
		}
		if got.Status.Allocation == nil {
			t.Errorf("%s patch of status left the claim unallocated", p.typ)
		}
	}

	bad := c.DeepCopy()
	bad.ResourceVersion = ""
	bad.Status.Allocation = nil
	bad.Status.ReservedFor = []resourcev1.ResourceClaimConsumerReference{{Resource: "pods", Name: "p", UID: "u1"}}
	if _, err := claims.UpdateStatus(ctx, bad, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!hasCause(err, "status.reservedFor") {
		t.Errorf("reserving an unallocated claim = %v, want Invalid naming status.reservedFor", err)
	}

	if err := claims.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "test=dra"}); err != nil {
		t.Fatalf("delete collection: %v", err)
	}
	if left, err := claims.List(ctx, metav1.ListOptions{}); err != nil || len(left.Items) != 0 {
		t.Errorf("after delete collection: %d claims, %v; want none", len(left.Items), err)
	}
}

// TestDeviceTaintRuleStatus updates a taint rule's spec and then its
// conditions, by update and by strategic merge patch.
func TestDeviceTaintRuleStatus(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	rules := ts.client.ResourceV1().DeviceTaintRules()
	r, err := rules.Create(ctx, &resourcev1.DeviceTaintRule{
		ObjectMeta: metav1.ObjectMeta{Name: "maintenance"},
		Spec:       resourcev1.DeviceTaintRuleSpec{Taint: resourcev1.DeviceTaint{Key: "testing", Effect: resourcev1.DeviceTaintEffectNone}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.Taint.TimeAdded == nil {
		t.Error("created taint has no timeAdded")
	}
	if _, err := rules.Patch(ctx, r.Name, types.StrategicMergePatchType, []byte(`{"spec":{"taint":{"effect":"NoExecute"}}}`),
		metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch spec: %v", err)
	}
	now := metav1.Now()
	stamp, _ := now.MarshalJSON()
	got, err := rules.Patch(ctx, r.Name, types.StrategicMergePatchType, fmt.Appendf(nil,
		`{"status":{"conditions":[{"type":"Testing","status":"True","lastTransitionTime":%s,"reason":"E2E","message":"m"}]}}`, stamp),
		metav1.PatchOptions{FieldValidation: "Strict"}, "status")
	if err != nil {
		t.Fatalf("patch status: %v", err)
	}
	if len(got.Status.Conditions) != 1 || got.Spec.Taint.Effect != resourcev1.DeviceTaintEffectNoExecute || got.Generation != 2 {
		t.Errorf("after patches: conditions %v, effect %s, generation %d; want one condition, NoExecute, 2",
			got.Status.Conditions, got.Spec.Taint.Effect, got.Generation)
	}
	got.Status.Conditions[0].Reason = ""
	if _, err := rules.UpdateStatus(ctx, got, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!hasCause(err, "status.conditions[0].reason") {
		t.Errorf("condition without reason = %v, want Invalid naming status.conditions[0].reason", err)
	}
}

// ptrIf is a pointer to b when b is true, else nil (an unset option).
func ptrIf(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

// hasCause reports whether err is a Status naming field among its causes.
func hasCause(err error, field string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}
