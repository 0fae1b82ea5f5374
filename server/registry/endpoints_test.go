package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testEndpoints() *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5", NodeName: ptrTo("node-1")}},
			Ports:     []corev1.EndpointPort{{Port: 80}},
		}},
	}
}

func validEndpoints() *corev1.Endpoints {
	ep := testEndpoints()
	endpointsResource.PrepareForCreate(ep)
	return ep
}

func TestEndpointsDefaults(t *testing.T) {
	if got := validEndpoints().Subsets[0].Ports[0].Protocol; got != corev1.ProtocolTCP {
		t.Errorf("port protocol = %q, want TCP", got)
	}
}

func TestValidateEndpoints(t *testing.T) {
	ss := func(ep *corev1.Endpoints) *corev1.EndpointSubset { return &ep.Subsets[0] }
	runValidation(t, endpointsResource, validEndpoints, []validationCase[*corev1.Endpoints]{
		{name: "valid"},
		{"no subsets", func(ep *corev1.Endpoints) { ep.Subsets = nil }, nil},
		{"not ready only", func(ep *corev1.Endpoints) { ss(ep).NotReadyAddresses, ss(ep).Addresses = ss(ep).Addresses, nil }, nil},
		{"addresses required", func(ep *corev1.Endpoints) { ss(ep).Addresses = nil }, []string{errKey(required, "subsets[0]")}},
		{"ip required", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].IP = "" }, []string{errKey(required, "subsets[0].addresses[0].ip")}},
		{"ip an IP", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].IP = "10.42.0" }, []string{errKey(invalid, "subsets[0].addresses[0].ip")}},
		{"ip not loopback", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].IP = "127.0.0.1" }, []string{errKey(invalid, "subsets[0].addresses[0].ip")}},
		{"ip not link-local", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].IP = "169.254.1.1" }, []string{errKey(invalid, "subsets[0].addresses[0].ip")}},
		{"ip specified", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].IP = "0.0.0.0" }, []string{errKey(invalid, "subsets[0].addresses[0].ip")}},
		{"not ready ip", func(ep *corev1.Endpoints) {
			ss(ep).NotReadyAddresses = []corev1.EndpointAddress{{IP: "x"}}
		}, []string{errKey(invalid, "subsets[0].notReadyAddresses[0].ip")}},
		{"hostname a DNS label", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].Hostname = "web.0" },
			[]string{errKey(invalid, "subsets[0].addresses[0].hostname")}},
		{"ip not multicast", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].IP = "239.1.2.3" }, []string{errKey(invalid, "subsets[0].addresses[0].ip")}},
		{"nodeName", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].NodeName = ptrTo("Node_1") },
			[]string{errKey(invalid, "subsets[0].addresses[0].nodeName")}},
		{"port in range", func(ep *corev1.Endpoints) { ss(ep).Ports[0].Port = 70000 }, []string{errKey(invalid, "subsets[0].ports[0].port")}},
		{"protocol supported", func(ep *corev1.Endpoints) { ss(ep).Ports[0].Protocol = "ICMP" }, []string{errKey(notSupported, "subsets[0].ports[0].protocol")}},
		{"names with several ports", func(ep *corev1.Endpoints) {
			ss(ep).Ports = append(ss(ep).Ports, corev1.EndpointPort{Name: "https", Port: 443, Protocol: "TCP"})
		}, []string{errKey(required, "subsets[0].ports[0].name")}},
		{"names unique", func(ep *corev1.Endpoints) {
			ss(ep).Ports[0].Name = "http"
			ss(ep).Ports = append(ss(ep).Ports, corev1.EndpointPort{Name: "http", Port: 443, Protocol: "TCP"})
		}, []string{errKey(duplicate, "subsets[0].ports[1].name")}},
		{"namespace required", func(ep *corev1.Endpoints) { ep.Namespace = "" }, []string{errKey(required, "metadata.namespace")}},
	})
	base := func() *corev1.Endpoints { return stored(endpointsResource, testEndpoints()) }
	runUpdate(t, endpointsResource, false, base, []validationCase[*corev1.Endpoints]{
		{"new address", func(ep *corev1.Endpoints) {
			ss(ep).Addresses = append(ss(ep).Addresses, corev1.EndpointAddress{IP: "10.42.1.7"})
		}, nil},
		{"bad address", func(ep *corev1.Endpoints) { ss(ep).Addresses[0].IP = "::1" }, []string{errKey(invalid, "subsets[0].addresses[0].ip")}},
	})
}

func TestEndpointsRow(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var a []corev1.EndpointAddress
		for _, ip := range ips {
			a = append(a, corev1.EndpointAddress{IP: ip})
		}
		return a
	}
	tests := []struct {
		name    string
		subsets []corev1.EndpointSubset
		want    string
	}{
		{"none", nil, "<none>"},
		{"only not ready", []corev1.EndpointSubset{{NotReadyAddresses: addrs("10.42.0.5"), Ports: []corev1.EndpointPort{{Port: 80}}}}, "<none>"},
		{"one", []corev1.EndpointSubset{{Addresses: addrs("10.42.0.5"), Ports: []corev1.EndpointPort{{Port: 80}}}}, "10.42.0.5:80"},
		{"without ports", []corev1.EndpointSubset{{Addresses: addrs("10.42.0.5", "10.42.0.6")}}, "10.42.0.5,10.42.0.6"},
		{"IPv6", []corev1.EndpointSubset{{Addresses: addrs("fd00::5"), Ports: []corev1.EndpointPort{{Port: 80}}}}, "[fd00::5]:80"},
		{"more", []corev1.EndpointSubset{{
			Addresses: addrs("10.42.0.5", "10.42.0.6", "10.42.0.7"),
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}},
		}}, "10.42.0.5:80,10.42.0.6:80,10.42.0.7:80 + 3 more..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: ago(5 * time.Hour)}, Subsets: tc.subsets}
			if diff := cmp.Diff([]interface{}{"web", tc.want, "5h"}, endpointsRow(ep, testNow)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
