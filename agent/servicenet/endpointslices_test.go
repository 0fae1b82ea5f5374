package servicenet

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testSlice is an IPv4 (or, for IPv6 endpoints, IPv6) EndpointSlice
// named name of service, with ports and endpoints.
func testSlice(ns, name, service string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	at := discoveryv1.AddressTypeIPv4
	if len(eps) > 0 && netip.MustParseAddr(eps[0].Addresses[0]).Is6() {
		at = discoveryv1.AddressTypeIPv6
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: at, Endpoints: eps, Ports: ports,
	}
}

// testEndpoint is an endpoint at addr, ready (and serving) or not.
func testEndpoint(addr, hostname string, ready bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: new(ready), Serving: new(ready)}}
	if hostname != "" {
		e.Hostname = new(hostname)
	}
	return e
}

// testPorts is one TCP port of a slice.
func testPorts(name string, port int32) []discoveryv1.EndpointPort {
	return []discoveryv1.EndpointPort{{Name: new(name), Port: new(port), Protocol: new(corev1.ProtocolTCP)}}
}

// mergedSlices converts and merges slices as a sync does.
func mergedSlices(slices ...*discoveryv1.EndpointSlice) map[svcKey][]sliceEndpoint {
	var parts []slicePart
	for _, s := range slices {
		if p, ok := sliceToPart(s); ok {
			parts = append(parts, p)
		}
	}
	return mergeSlices(parts)
}

func TestProxyEndpointsFromSlices(t *testing.T) {
	terminating := func(addr string, serving bool) discoveryv1.Endpoint {
		e := testEndpoint(addr, "", false)
		e.Conditions.Serving, e.Conditions.Terminating = new(serving), new(true)
		return e
	}
	twoPorts := append(testPorts("http", 8080), testPorts("metrics", 9090)...)
	tests := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   map[string][]string // by port name
	}{{
		name: "slices of one service merged",
		slices: []*discoveryv1.EndpointSlice{
			testSlice("ns", "web-a", "web", testPorts("http", 8080), testEndpoint("10.42.0.5", "", true)),
			testSlice("ns", "web-b", "web", testPorts("http", 8080), testEndpoint("10.42.1.7", "", true), testEndpoint("10.42.1.8", "", false)),
		},
		want: map[string][]string{"http": {"10.42.0.5:8080", "10.42.1.7:8080"}},
	}, {
		name: "ports by name, each slice with its own",
		slices: []*discoveryv1.EndpointSlice{
			testSlice("ns", "web-a", "web", twoPorts, testEndpoint("10.42.0.5", "", true)),
			// A slice whose pods name the port differently (another
			// targetPort) serves it at their own number.
			testSlice("ns", "web-b", "web", testPorts("http", 8081), testEndpoint("10.42.1.7", "", true)),
		},
		want: map[string][]string{"http": {"10.42.0.5:8080", "10.42.1.7:8081"}, "metrics": {"10.42.0.5:9090"}},
	}, {
		name: "serving terminating endpoints when none is ready",
		slices: []*discoveryv1.EndpointSlice{
			testSlice("ns", "web-a", "web", testPorts("http", 8080),
				terminating("10.42.0.5", true), terminating("10.42.0.6", false), testEndpoint("10.42.0.7", "", false)),
		},
		want: map[string][]string{"http": {"10.42.0.5:8080"}},
	}, {
		name: "terminating endpoints left out while one is ready",
		slices: []*discoveryv1.EndpointSlice{
			testSlice("ns", "web-a", "web", testPorts("http", 8080), terminating("10.42.0.5", true)),
			testSlice("ns", "web-b", "web", testPorts("http", 8080), testEndpoint("10.42.0.9", "", true)),
		},
		want: map[string][]string{"http": {"10.42.0.9:8080"}},
	}, {
		name: "conditions unset mean ready",
		slices: []*discoveryv1.EndpointSlice{
			testSlice("ns", "web-a", "web", testPorts("http", 8080), discoveryv1.Endpoint{Addresses: []string{"10.42.0.5"}}),
		},
		want: map[string][]string{"http": {"10.42.0.5:8080"}},
	}, {
		name: "slices of no service and FQDN slices ignored",
		slices: []*discoveryv1.EndpointSlice{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "orphan"}, AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}}, Ports: testPorts("http", 8080)},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-fqdn", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
				AddressType: discoveryv1.AddressTypeFQDN, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"example.com"}}}, Ports: testPorts("http", 8080)},
			testSlice("ns", "web-a", "web", testPorts("http", 8080), testEndpoint("10.42.0.9", "", true)),
		},
		want: map[string][]string{"http": {"10.42.0.9:8080"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			merged := mergedSlices(tc.slices...)
			if len(merged) != 1 {
				t.Fatalf("mergedSlices() = %d services, want 1", len(merged))
			}
			pe := proxyEndpointsOf(svcKey{"ns", "web"}, merged[svcKey{"ns", "web"}])
			got := map[string][]string{}
			for name, aps := range pe.Ports {
				for _, ap := range aps {
					got[name] = append(got[name], ap.String())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("proxyEndpointsOf() (-want +got):\n%s", diff)
			}
		})
	}
}

// An address that two slices hold while the controller moves it is
// named once in DNS; a not-ready one not at all.
func TestDNSRecordsFromSlices(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "db"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}}
	merged := mergedSlices(
		testSlice("ns", "db-a", "db", testPorts("pg", 5432), testEndpoint("10.42.0.5", "db-0", true), testEndpoint("10.42.0.6", "db-1", false)),
		testSlice("ns", "db-b", "db", testPorts("pg", 5432), testEndpoint("10.42.0.5", "db-0", true)),
	)
	ds := newRecords([]*corev1.Service{svc}, merged).services["db.ns"]
	if ds == nil {
		t.Fatal("no records of ns/db")
	}
	var got []string
	for _, e := range ds.endpoints {
		got = append(got, e.host+" "+e.ip.String())
		if e.ports["pg/tcp"] != 5432 {
			t.Errorf("endpoint %s ports = %v, want pg/tcp 5432", e.host, e.ports)
		}
	}
	if diff := cmp.Diff([]string{"db-0 10.42.0.5"}, got); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}
