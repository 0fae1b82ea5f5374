package apiserver

import (
	"encoding/json"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestServiceCIDRStatus reads a ServiceCIDR through its status
// subresource, as the object of its own kind, and writes the status.
func TestServiceCIDRStatus(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	cidrs := ts.client.NetworkingV1().ServiceCIDRs()
	created, err := cidrs.Create(ctx, &networkingv1.ServiceCIDR{
		ObjectMeta: metav1.ObjectMeta{Name: "extra"},
		Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/24"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ts.client.NetworkingV1().RESTClient().Get().AbsPath("/apis/networking.k8s.io/v1/servicecidrs/extra/status").DoRaw(ctx)
	if err != nil {
		t.Fatalf("get status: %v", err)
	}
	var got networkingv1.ServiceCIDR
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "ServiceCIDR" || got.APIVersion != "networking.k8s.io/v1" || got.UID != created.UID {
		t.Errorf("status read = %s %s uid %s, want networking.k8s.io/v1 ServiceCIDR uid %s", got.APIVersion, got.Kind, got.UID, created.UID)
	}
	patched, err := cidrs.Patch(ctx, "extra", types.MergePatchType,
		[]byte(`{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ready","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`),
		metav1.PatchOptions{}, "status")
	if err != nil || len(patched.Status.Conditions) != 1 {
		t.Fatalf("patch status = %v, %v; want one condition", patched, err)
	}
	_, err = cidrs.Create(ctx, &networkingv1.ServiceCIDR{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.1/24"}},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "spec.cidrs[0]") {
		t.Errorf("create with host bits = %v, want Invalid naming spec.cidrs[0]", err)
	}
}

// TestIPAddressOperations runs the operations Kubernetes' IPAddress API
// promises: create, patch, update, list and delete by label.
func TestIPAddressOperations(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ips := ts.client.NetworkingV1().IPAddresses()
	parent := &networkingv1.ParentReference{Group: "mygroup", Resource: "myresources", Namespace: "foo", Name: "bar"}
	for name, kind := range map[string]string{"255.255.255.255": "broadcast", "fe80::42:1dff:fe84:f9e2": "link-local"} {
		if _, err := ips.Create(ctx, &networkingv1.IPAddress{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"type": kind}},
			Spec:       networkingv1.IPAddressSpec{ParentRef: parent},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	patched, err := ips.Patch(ctx, "255.255.255.255", types.MergePatchType, []byte(`{"metadata":{"annotations":{"patched":"true"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Annotations["patched"] != "true" {
		t.Fatalf("patch = %v, %v", patched, err)
	}
	patched.Annotations["updated"] = "true"
	if _, err := ips.Update(ctx, patched, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	patched.Spec.ParentRef = &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "other"}
	patched.ResourceVersion = ""
	if _, err := ips.Update(ctx, patched, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !hasCause(err, "spec.parentRef") {
		t.Errorf("changing the parent = %v, want Invalid naming spec.parentRef", err)
	}
	if list, err := ips.List(ctx, metav1.ListOptions{LabelSelector: "type=broadcast"}); err != nil || len(list.Items) != 1 {
		t.Errorf("list broadcast = %v, %v; want one", list, err)
	}
	if err := ips.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "type=link-local"}); err != nil {
		t.Fatalf("delete collection: %v", err)
	}
	if list, err := ips.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 1 || list.Items[0].Name != "255.255.255.255" {
		t.Errorf("after delete collection: %v, %v; want the broadcast address only", list, err)
	}
	if _, err := ips.Create(ctx, &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.01"},
		Spec: networkingv1.IPAddressSpec{ParentRef: parent}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !hasCause(err, "metadata.name") {
		t.Errorf("create 10.0.0.01 = %v, want Invalid naming metadata.name", err)
	}
}
