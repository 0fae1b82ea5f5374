package registry

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateIngress(t *testing.T) {
	type ing = networkingv1.Ingress
	base := func() *ing {
		return &ing{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{Host: "*.example.com", IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/app", PathType: ptrTo(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}},
			}}},
		}}
	}
	path0 := func(i *ing) *networkingv1.HTTPIngressPath { return &i.Spec.Rules[0].HTTP.Paths[0] }
	runValidation(t, ingressResource, base, []validationCase[*ing]{
		{name: "valid"},
		{"no rules nor backend", func(i *ing) { i.Spec.Rules = nil }, []string{errKey(invalid, "spec")}},
		{"ip host", func(i *ing) { i.Spec.Rules[0].Host = "10.0.0.1" }, []string{errKey(invalid, "spec.rules[0].host")}},
		{"no path type", func(i *ing) { path0(i).PathType = nil }, []string{errKey(required, "spec.rules[0].http.paths[0].pathType")}},
		{"relative prefix", func(i *ing) { path0(i).Path = "app" }, []string{errKey(invalid, "spec.rules[0].http.paths[0].path")}},
		{"port name and number", func(i *ing) { path0(i).Backend.Service.Port.Name = "http" },
			[]string{errKey(invalid, "spec.rules[0].http.paths[0].backend.service.port")}},
		{"no port", func(i *ing) { path0(i).Backend.Service.Port.Number = 0 },
			[]string{errKey(required, "spec.rules[0].http.paths[0].backend.service.port")}},
	})
	runUpdate(t, ingressResource, true, base, []validationCase[*ing]{
		{"status ip", func(i *ing) {
			i.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "10.0.0.5"}}
		}, nil},
		{"bad status ip", func(i *ing) {
			i.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "10.0.0"}}
		}, []string{errKey(invalid, "status.loadBalancer.ingress[0].ip")}},
	})
}

func TestValidateIngressClass(t *testing.T) {
	type ic = networkingv1.IngressClass
	base := func() *ic {
		return &ic{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{
			Controller: "example.com/ingress",
			Parameters: &networkingv1.IngressClassParametersReference{Kind: "Params", Name: "p", Scope: ptrTo("Namespace"), Namespace: ptrTo("default")},
		}}
	}
	runValidation(t, ingressClassResource, base, []validationCase[*ic]{
		{name: "valid"},
		{"no controller", func(c *ic) { c.Spec.Controller = "" }, []string{errKey(required, "spec.controller")}},
		{"namespace scope without namespace", func(c *ic) { c.Spec.Parameters.Namespace = nil },
			[]string{errKey(required, "spec.parameters.namespace")}},
		{"cluster scope with namespace", func(c *ic) { c.Spec.Parameters.Scope = ptrTo("Cluster") },
			[]string{errKey(forbidden, "spec.parameters.namespace")}},
	})
	runUpdate(t, ingressClassResource, false, base, []validationCase[*ic]{
		{"controller is immutable", func(c *ic) { c.Spec.Controller = "example.com/other" }, []string{errKey(invalid, "spec.controller")}},
	})
}
