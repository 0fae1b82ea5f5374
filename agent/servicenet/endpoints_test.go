package servicenet

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// The Endpoints of a server of an earlier version give a Service the same
// endpoints, hostnames and conditions as the EndpointSlice a newer
// server sends in their place.
func TestEndpointsReadAsSlices(t *testing.T) {
	objs := Objects{
		{Kind: KindService, Namespace: "default", Name: "web"}: []byte(`{"metadata":{"name":"web","namespace":"default"},"spec":{"clusterIP":"10.43.0.20","ports":[{"name":"http","port":80}]}}`),
		{Kind: KindEndpoints, Namespace: "default", Name: "web"}: []byte(`{"metadata":{"name":"web","namespace":"default"},"subsets":[` +
			`{"addresses":[{"ip":"10.42.0.6"},{"ip":"10.42.0.5","hostname":"web-0"}],"notReadyAddresses":[{"ip":"10.42.0.7"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]},` +
			`{"addresses":[{"ip":"10.42.1.5"}],"ports":[{"name":"metrics","port":9090,"protocol":"TCP"}]}]}`),
	}
	v, _ := decodeViewCached(objs, nil, slog.New(slog.DiscardHandler))
	got := mergeSlices(v.slices)
	slice := testSlice("default", "web-abcde", "web", testPorts("http", 8080),
		testEndpoint("10.42.0.5", "web-0", true), testEndpoint("10.42.0.6", "", true), testEndpoint("10.42.0.7", "", false))
	metrics := testSlice("default", "web-fghij", "web", testPorts("metrics", 9090), testEndpoint("10.42.1.5", "", true))
	want := mergedSlices(slice, metrics)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(svcKey{}, sliceEndpoint{}),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("endpoints of web (-from slices +from Endpoints):\n%s", diff)
	}
	eps := proxyEndpointsFromSlices(got)
	wantHTTP := []netip.AddrPort{netip.MustParseAddrPort("10.42.0.5:8080"), netip.MustParseAddrPort("10.42.0.6:8080")}
	if len(eps) != 1 || !cmp.Equal(eps[0].Ports["http"], wantHTTP, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })) {
		t.Errorf("proxy endpoints = %+v, want http at %v", eps, wantHTTP)
	}
}

// The ports of an Endpoints subset keep their protocol and app protocol.
func TestEndpointsPorts(t *testing.T) {
	e := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5"}},
		Ports:     []corev1.EndpointPort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, AppProtocol: new("dns")}},
	}}}
	e.Name, e.Namespace = "kube-dns", "kube-system"
	p := endpointsToPart(e)
	want := []discoveryv1.EndpointPort{{Name: new("dns"), Port: new(int32(53)), Protocol: new(corev1.ProtocolUDP), AppProtocol: new("dns")}}
	if len(p.endpoints) != 1 || !cmp.Equal(p.endpoints[0].ports, want) || p.service != (svcKey{"kube-system", "kube-dns"}) {
		t.Errorf("endpointsToPart() = %+v, want one endpoint of kube-system/kube-dns with ports %v", p, want)
	}
}
