package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validEndpointSlice() *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde", Namespace: "default"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.42.0.5"},
			NodeName:  ptrTo("node-1"),
		}},
		Ports: []discoveryv1.EndpointPort{{Port: ptrTo(int32(80))}},
	}
	endpointSliceResource.PrepareForCreate(s)
	return s
}

func TestEndpointSliceDefaults(t *testing.T) {
	p := validEndpointSlice().Ports[0]
	if p.Name == nil || *p.Name != "" || p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP {
		t.Errorf("port = %+v, want name \"\" and protocol TCP", p)
	}
}

func TestValidateEndpointSlice(t *testing.T) {
	ep := func(s *discoveryv1.EndpointSlice) *discoveryv1.Endpoint { return &s.Endpoints[0] }
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("10.42.%d.%d", i/250, i%250+1)
		}
		return out
	}
	runValidation(t, endpointSliceResource, validEndpointSlice, []validationCase[*discoveryv1.EndpointSlice]{
		{name: "valid"},
		{"no address type", func(s *discoveryv1.EndpointSlice) { s.AddressType = "" }, []string{errKey(required, "addressType")}},
		{"address type IP", func(s *discoveryv1.EndpointSlice) { s.AddressType = "IP" }, []string{errKey(notSupported, "addressType")}},
		{"ipv6 in ipv4 slice", func(s *discoveryv1.EndpointSlice) { ep(s).Addresses = []string{"fd00::1"} },
			[]string{errKey(invalid, "endpoints[0].addresses[0]")}},
		{"ipv6 slice", func(s *discoveryv1.EndpointSlice) {
			s.AddressType, ep(s).Addresses = discoveryv1.AddressTypeIPv6, []string{"fd00::1"}
		}, nil},
		{"not an ip", func(s *discoveryv1.EndpointSlice) { ep(s).Addresses = []string{"web"} },
			[]string{errKey(invalid, "endpoints[0].addresses[0]")}},
		{"loopback", func(s *discoveryv1.EndpointSlice) { ep(s).Addresses = []string{"127.0.0.1"} },
			[]string{errKey(invalid, "endpoints[0].addresses[0]")}},
		{"fqdn", func(s *discoveryv1.EndpointSlice) {
			s.AddressType, ep(s).Addresses = discoveryv1.AddressTypeFQDN, []string{"web.example.com"}
		}, nil},
		{"bad fqdn", func(s *discoveryv1.EndpointSlice) {
			s.AddressType, ep(s).Addresses = discoveryv1.AddressTypeFQDN, []string{"web"}
		}, []string{errKey(invalid, "endpoints[0].addresses[0]")}},
		{"no addresses", func(s *discoveryv1.EndpointSlice) { ep(s).Addresses = nil },
			[]string{errKey(required, "endpoints[0].addresses")}},
		{"101 addresses", func(s *discoveryv1.EndpointSlice) { ep(s).Addresses = many(101) },
			[]string{errKey(tooMany, "endpoints[0].addresses")}},
		{"1001 endpoints", func(s *discoveryv1.EndpointSlice) {
			for _, a := range many(1000) {
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
			}
		}, []string{errKey(tooMany, "endpoints")}},
		{"101 ports", func(s *discoveryv1.EndpointSlice) {
			for i := range 100 {
				s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptrTo(fmt.Sprintf("p%d", i)), Protocol: ptrTo(corev1.ProtocolTCP)})
			}
		}, []string{errKey(tooMany, "ports")}},
		{"bad node name", func(s *discoveryv1.EndpointSlice) { ep(s).NodeName = ptrTo("Node_1") },
			[]string{errKey(invalid, "endpoints[0].nodeName")}},
		{"bad hostname", func(s *discoveryv1.EndpointSlice) { ep(s).Hostname = ptrTo("a.b") },
			[]string{errKey(invalid, "endpoints[0].hostname")}},
		{"bad topology label", func(s *discoveryv1.EndpointSlice) {
			ep(s).DeprecatedTopology = map[string]string{"a b": "x"}
		}, []string{errKey(invalid, "endpoints[0].deprecatedTopology")}},
		{"duplicate port name", func(s *discoveryv1.EndpointSlice) { s.Ports = append(s.Ports, s.Ports[0]) },
			[]string{errKey(duplicate, "ports[1].name")}},
		{"bad port name", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Name = ptrTo("HTTP") },
			[]string{errKey(invalid, "ports[0].name")}},
		{"bad protocol", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = ptrTo(corev1.Protocol("ICMP")) },
			[]string{errKey(notSupported, "ports[0].protocol")}},
		{"bad port", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Port = ptrTo(int32(70000)) },
			[]string{errKey(invalid, "ports[0].port")}},
		{"bad app protocol", func(s *discoveryv1.EndpointSlice) { s.Ports[0].AppProtocol = ptrTo("a b") },
			[]string{errKey(invalid, "ports[0].appProtocol")}},
		{"bad labels", func(s *discoveryv1.EndpointSlice) { s.Labels = map[string]string{"a": "-"} },
			[]string{errKey(invalid, "metadata.labels")}},
	})
}

func TestEndpointSliceAddressTypeImmutable(t *testing.T) {
	old := validEndpointSlice()
	s := validEndpointSlice()
	s.AddressType, s.Endpoints = discoveryv1.AddressTypeFQDN, nil
	endpointSliceResource.PrepareForUpdate(s, old)
	got := errorKeys(endpointSliceResource.ValidateUpdate(s, old))
	if diff := cmp.Diff([]string{errKey(invalid, "addressType")}, got); diff != "" {
		t.Errorf("ValidateUpdate (-want +got):\n%s", diff)
	}
}

func TestEndpointSliceRow(t *testing.T) {
	s := validEndpointSlice()
	s.CreationTimestamp = ago(time.Hour)
	s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptrTo("metrics")})
	for _, a := range []string{"10.42.0.6", "10.42.0.7", "10.42.0.8"} {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	want := []interface{}{"web-abcde", "IPv4", "80,metrics", "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more...", "60m"}
	if diff := cmp.Diff(want, endpointSliceRow(s, testNow)); diff != "" {
		t.Errorf("endpointSliceRow (-want +got):\n%s", diff)
	}
	empty := endpointSliceRow(&discoveryv1.EndpointSlice{}, testNow)
	if empty[2] != "<unset>" || empty[3] != "<unset>" {
		t.Errorf("empty slice row = %v, want <unset> ports and endpoints", empty)
	}
}
