package apiserver

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestGroupedKindsDiscovery checks that EndpointSlice, Lease and the
// events.k8s.io Event are discoverable in their groups.
func TestGroupedKindsDiscovery(t *testing.T) {
	ts := newTestServer(t)
	for gv, name := range map[string]string{
		"discovery.k8s.io/v1":    "endpointslices",
		"coordination.k8s.io/v1": "leases",
		"events.k8s.io/v1":       "events",
	} {
		list, err := ts.client.Discovery().ServerResourcesForGroupVersion(gv)
		if err != nil {
			t.Errorf("discovery of %s: %v", gv, err)
			continue
		}
		found := false
		for _, r := range list.APIResources {
			found = found || r.Name == name
		}
		if !found {
			t.Errorf("%s lists %v, want %s", gv, list.APIResources, name)
		}
	}
}

// TestGroupedKindsInvalid checks that bad EndpointSlices and Leases get a
// 422 naming the field, and are not stored.
func TestGroupedKindsInvalid(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	slices := ts.client.DiscoveryV1().EndpointSlices("default")
	port := int32(80)
	_, err := slices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}},
		Ports:       []discoveryv1.EndpointPort{{Port: &port}},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasFieldCause(err, "endpoints[0].addresses[0]") {
		t.Errorf("create slice with an IPv6 address in an IPv4 slice = %v, want 422 naming the address", err)
	}
	if _, err := slices.Get(ctx, "web-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get refused slice = %v, want NotFound", err)
	}
	ok, err := slices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-2"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create valid slice: %v", err)
	}
	ok.AddressType = discoveryv1.AddressTypeIPv6
	ok.Endpoints = nil
	if _, err := slices.Update(ctx, ok, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !hasFieldCause(err, "addressType") {
		t.Errorf("change of addressType = %v, want 422 naming it", err)
	}

	leases := ts.client.CoordinationV1().Leases("kube-node-lease")
	zero := int32(0)
	_, err = leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Spec:       coordinationv1.LeaseSpec{LeaseDurationSeconds: &zero},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasFieldCause(err, "spec.leaseDurationSeconds") {
		t.Errorf("create lease of 0 s = %v, want 422 naming spec.leaseDurationSeconds", err)
	}
	if _, err := leases.Get(ctx, "n1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get refused lease = %v, want NotFound", err)
	}
}
