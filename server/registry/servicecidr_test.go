package registry

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateServiceCIDR(t *testing.T) {
	type sc = networkingv1.ServiceCIDR
	base := func() *sc {
		return &sc{ObjectMeta: metav1.ObjectMeta{Name: "extra"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/24"}}}
	}
	runValidation(t, serviceCIDRResource, base, []validationCase[*sc]{
		{name: "valid"},
		{"dual stack", func(c *sc) { c.Spec.CIDRs = append(c.Spec.CIDRs, "fd00::/112") }, nil},
		{"no cidrs", func(c *sc) { c.Spec.CIDRs = nil }, []string{errKey(required, "spec.cidrs")}},
		{"three cidrs", func(c *sc) { c.Spec.CIDRs = []string{"10.0.0.0/24", "fd00::/112", "10.1.0.0/24"} },
			[]string{errKey(tooMany, "spec.cidrs")}},
		{"not a cidr", func(c *sc) { c.Spec.CIDRs = []string{"10.96.0.0"} }, []string{errKey(invalid, "spec.cidrs[0]")}},
		{"host bits set", func(c *sc) { c.Spec.CIDRs = []string{"10.96.0.1/24"} }, []string{errKey(invalid, "spec.cidrs[0]")}},
		{"two of a family", func(c *sc) { c.Spec.CIDRs = []string{"10.0.0.0/24", "10.1.0.0/24"} }, []string{errKey(invalid, "spec.cidrs")}},
	})
	runUpdate(t, serviceCIDRResource, false, base, []validationCase[*sc]{
		{"to dual stack", func(c *sc) { c.Spec.CIDRs = append(c.Spec.CIDRs, "fd00::/112") }, nil},
		{"other range", func(c *sc) { c.Spec.CIDRs = []string{"10.97.0.0/24"} }, []string{errKey(invalid, "spec.cidrs")}},
		{"status writes are ignored", func(c *sc) {
			c.Status.Conditions = []metav1.Condition{{Type: "bad type!"}}
		}, nil},
	})
	runUpdate(t, serviceCIDRResource, true, base, []validationCase[*sc]{
		{"ready", func(c *sc) {
			c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Ready", LastTransitionTime: ago(0)}}
		}, nil},
		{"condition without status", func(c *sc) {
			c.Status.Conditions = []metav1.Condition{{Type: "Ready", Reason: "Ready", LastTransitionTime: ago(0)}}
		}, []string{errKey(required, "status.conditions[0].status")}},
		{"spec writes are ignored", func(c *sc) { c.Spec.CIDRs = []string{"10.97.0.0/24"} }, nil},
	})
}

func TestValidateIPAddress(t *testing.T) {
	type ip = networkingv1.IPAddress
	base := func() *ip {
		return &ip{ObjectMeta: metav1.ObjectMeta{Name: "255.255.255.255"}, Spec: networkingv1.IPAddressSpec{
			ParentRef: &networkingv1.ParentReference{Group: "mygroup", Resource: "myresources", Namespace: "foo", Name: "bar"},
		}}
	}
	runValidation(t, ipAddressResource, base, []validationCase[*ip]{
		{name: "valid"},
		{"ipv6", func(i *ip) { i.Name = "fe80::42:1dff:fe84:f9e2" }, nil},
		{"not an address", func(i *ip) { i.Name = "bar" }, []string{errKey(invalid, "metadata.name")}},
		{"not canonical", func(i *ip) { i.Name = "2001:DB8::1" }, []string{errKey(invalid, "metadata.name")}},
		{"mapped ipv4", func(i *ip) { i.Name = "::ffff:10.0.0.1" }, []string{errKey(invalid, "metadata.name")}},
		{"no parent", func(i *ip) { i.Spec.ParentRef = nil }, []string{errKey(required, "spec.parentRef")}},
		{"no resource", func(i *ip) { i.Spec.ParentRef.Resource = "" }, []string{errKey(required, "spec.parentRef.resource")}},
		{"no name", func(i *ip) { i.Spec.ParentRef.Name = "" }, []string{errKey(required, "spec.parentRef.name")}},
		{"slash in name", func(i *ip) { i.Spec.ParentRef.Name = "a/b" }, []string{errKey(invalid, "spec.parentRef.name")}},
	})
	runUpdate(t, ipAddressResource, false, base, []validationCase[*ip]{
		{"annotations change", func(i *ip) { i.Annotations = map[string]string{"updated": "true"} }, nil},
		{"parent is immutable", func(i *ip) { i.Spec.ParentRef.Name = "baz" }, []string{errKey(invalid, "spec.parentRef")}},
	})
}
