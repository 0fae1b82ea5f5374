package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
}

func validService() *corev1.Service {
	svc := testService()
	serviceResource.PrepareForCreate(svc)
	return svc
}

func TestServiceDefaults(t *testing.T) {
	svc := testService()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	serviceResource.PrepareForCreate(svc)
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 1},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeClusterIP,
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
			SessionAffinity:       corev1.ServiceAffinityNone,
			IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:        ptrTo(corev1.IPFamilyPolicySingleStack),
			InternalTrafficPolicy: ptrTo(corev1.ServiceInternalTrafficPolicyCluster),
		},
	}
	if diff := cmp.Diff(want, svc); diff != "" {
		t.Errorf("PrepareForCreate (-want +got):\n%s", diff)
	}
}

func TestServiceDefaultsByType(t *testing.T) {
	lb := testService()
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb.Spec.Ports[0].TargetPort = intstr.FromString("http")
	serviceResource.PrepareForCreate(lb)
	got := []interface{}{lb.Spec.ExternalTrafficPolicy, *lb.Spec.AllocateLoadBalancerNodePorts, lb.Spec.Ports[0].TargetPort.String()}
	want := []interface{}{corev1.ServiceExternalTrafficPolicyCluster, true, "http"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadBalancer defaults (-want +got):\n%s", diff)
	}

	ext := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}
	serviceResource.PrepareForCreate(ext)
	if ext.Spec.IPFamilies != nil || ext.Spec.IPFamilyPolicy != nil || ext.Spec.InternalTrafficPolicy != nil {
		t.Errorf("ExternalName service got IP defaults: %+v", ext.Spec)
	}

	v6 := testService()
	v6.Spec.ClusterIP = "fd00::10"
	v6.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	serviceResource.PrepareForCreate(v6)
	got = []interface{}{v6.Spec.IPFamilies, *v6.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds}
	want = []interface{}{[]corev1.IPFamily{corev1.IPv6Protocol}, int32(10800)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("IPv6 ClientIP defaults (-want +got):\n%s", diff)
	}
}

func TestValidateService(t *testing.T) {
	port := func(s *corev1.Service) *corev1.ServicePort { return &s.Spec.Ports[0] }
	addPort := func(s *corev1.Service, name string, n int32) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: name, Port: n, Protocol: "TCP", TargetPort: intstr.FromInt32(n)})
	}
	runValidation(t, serviceResource, validService, []validationCase[*corev1.Service]{
		{name: "valid"},
		{"name a DNS-1035 label", func(s *corev1.Service) { s.Name = "1web" }, []string{errKey(invalid, "metadata.name")}},
		{"name without dots", func(s *corev1.Service) { s.Name = "web.v1" }, []string{errKey(invalid, "metadata.name")}},
		{"namespace required", func(s *corev1.Service) { s.Namespace = "" }, []string{errKey(required, "metadata.namespace")}},
		{"ports required", func(s *corev1.Service) { s.Spec.Ports = nil }, []string{errKey(required, "spec.ports")}},
		{"headless without ports", func(s *corev1.Service) { s.Spec.Ports, s.Spec.ClusterIP = nil, "None" }, nil},
		{"port in range", func(s *corev1.Service) { port(s).Port = 65536 }, []string{errKey(invalid, "spec.ports[0].port")}},
		{"port required", func(s *corev1.Service) { port(s).Port = 0 }, []string{errKey(required, "spec.ports[0].port")}},
		{"protocol supported", func(s *corev1.Service) { port(s).Protocol = "ICMP" }, []string{errKey(notSupported, "spec.ports[0].protocol")}},
		{"targetPort number", func(s *corev1.Service) { port(s).TargetPort = intstr.FromInt32(70000) }, []string{errKey(invalid, "spec.ports[0].targetPort")}},
		{"targetPort name", func(s *corev1.Service) { port(s).TargetPort = intstr.FromString("http_alt") }, []string{errKey(invalid, "spec.ports[0].targetPort")}},
		{"targetPort name required", func(s *corev1.Service) { port(s).TargetPort = intstr.FromString("") },
			[]string{errKey(required, "spec.ports[0].targetPort")}},
		{"names required with several ports", func(s *corev1.Service) { addPort(s, "https", 443) }, []string{errKey(required, "spec.ports[0].name")}},
		{"names unique", func(s *corev1.Service) { port(s).Name = "http"; addPort(s, "http", 443) }, []string{errKey(duplicate, "spec.ports[1].name")}},
		{"names DNS labels", func(s *corev1.Service) { port(s).Name = "Http" }, []string{errKey(invalid, "spec.ports[0].name")}},
		{"port and protocol unique", func(s *corev1.Service) { port(s).Name = "a"; addPort(s, "b", 80) }, []string{errKey(duplicate, "spec.ports[1]")}},
		{"nodePort for NodePort", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeNodePort, corev1.ServiceExternalTrafficPolicyCluster
			port(s).NodePort = 30080
		}, nil},
		{"nodePort not for ClusterIP", func(s *corev1.Service) { port(s).NodePort = 30080 }, []string{errKey(forbidden, "spec.ports[0].nodePort")}},
		{"type supported", func(s *corev1.Service) { s.Spec.Type = "Ingress" }, []string{errKey(notSupported, "spec.type")}},
		{"sessionAffinity supported", func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }, []string{errKey(notSupported, "spec.sessionAffinity")}},
		{"affinity timeout in range", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo[int32](0)}}
		}, []string{errKey(invalid, "spec.sessionAffinityConfig.clientIP.timeoutSeconds")}},
		{"affinity config only for ClientIP", func(s *corev1.Service) {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo[int32](60)}}
		}, []string{errKey(forbidden, "spec.sessionAffinityConfig")}},
		{"loadBalancerClass for LoadBalancer", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.LoadBalancerClass = ptrTo("minik.dev/servicelb")
		}, nil},
		{"loadBalancerClass a qualified name", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.LoadBalancerClass = ptrTo("not a class")
		}, []string{errKey(invalid, "spec.loadBalancerClass")}},
		{"loadBalancerClass not for ClusterIP", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptrTo("minik.dev/servicelb") },
			[]string{errKey(forbidden, "spec.loadBalancerClass")}},
		{"allocateLoadBalancerNodePorts not for NodePort", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeNodePort, corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.AllocateLoadBalancerNodePorts = ptrTo(false)
		}, []string{errKey(forbidden, "spec.allocateLoadBalancerNodePorts")}},
		{"selector labels", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web app"} }, []string{errKey(invalid, "spec.selector")}},
		{"clusterIP an IP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.300" }, []string{errKey(invalid, "spec.clusterIP")}},
		{"clusterIP given", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }, nil},
		{"None only for ClusterIP", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.ClusterIP = corev1.ServiceTypeNodePort, "Cluster", "None"
		}, []string{errKey(invalid, "spec.clusterIP")}},
		{"clusterIPs match clusterIP", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.43.0.10", []string{"10.43.0.11"} },
			[]string{errKey(invalid, "spec.clusterIPs[0]")}},
		{"externalIPs are IPs", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"example.com"} }, []string{errKey(invalid, "spec.externalIPs[0]")}},
		{"externalTrafficPolicy only external", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = "Local" },
			[]string{errKey(invalid, "spec.externalTrafficPolicy")}},
		{"internalTrafficPolicy supported", func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptrTo[corev1.ServiceInternalTrafficPolicy]("Node")
		},
			[]string{errKey(notSupported, "spec.internalTrafficPolicy")}},
		{"ipFamilies supported", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{"IPv5"} }, []string{errKey(notSupported, "spec.ipFamilies[0]")}},
		{"ipFamilies unique", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{"IPv4", "IPv4"} },
			[]string{errKey(duplicate, "spec.ipFamilies[1]")}},
		{"at most two ipFamilies", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{"IPv4", "IPv6", "IPv6"} },
			[]string{errKey(duplicate, "spec.ipFamilies[2]"), errKey(tooMany, "spec.ipFamilies")}},
		{"ipFamilyPolicy supported", func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptrTo[corev1.IPFamilyPolicy]("Any") },
			[]string{errKey(notSupported, "spec.ipFamilyPolicy")}},
	})
}

func TestValidateExternalNameService(t *testing.T) {
	base := func() *corev1.Service {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."},
		}
		serviceResource.PrepareForCreate(svc)
		return svc
	}
	runValidation(t, serviceResource, base, []validationCase[*corev1.Service]{
		{name: "valid without ports"},
		{"externalName required", func(s *corev1.Service) { s.Spec.ExternalName = "" }, []string{errKey(required, "spec.externalName")}},
		{"externalName a DNS name", func(s *corev1.Service) { s.Spec.ExternalName = "db_1.example.com" }, []string{errKey(invalid, "spec.externalName")}},
		{"no clusterIP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }, []string{errKey(forbidden, "spec.clusterIP")}},
	})
}

func TestServiceUpdate(t *testing.T) {
	base := func() *corev1.Service {
		svc := stored(serviceResource, testService())
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.43.0.10", []string{"10.43.0.10"}
		return svc
	}
	runUpdate(t, serviceResource, false, base, []validationCase[*corev1.Service]{
		{"selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web2"} }, nil},
		{"clusterIP left out is kept", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil }, nil},
		{"clusterIP immutable", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.43.0.11", nil },
			[]string{errKey(invalid, "spec.clusterIP")}},
		{"to ExternalName drops clusterIP", func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "web.example.com"}
		}, nil},
	})

	old := base()
	old.Spec.Type = corev1.ServiceTypeNodePort
	old.Spec.Ports[0].NodePort = 30080
	old.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	svc := testService() // the original manifest again
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.Selector["tier"] = "front"
	serviceResource.PrepareForUpdate(svc, old)
	got := []interface{}{svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort, svc.Status, svc.Generation}
	want := []interface{}{"10.43.0.10", int32(30080), old.Status, int64(2)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after PrepareForUpdate (clusterIP, nodePort, status, generation) (-want +got):\n%s", diff)
	}
}

func TestServiceTypeChange(t *testing.T) {
	lb := func() *corev1.Service {
		svc := testService()
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		svc.Spec.LoadBalancerClass = ptrTo("minik.dev/servicelb")
		svc = stored(serviceResource, svc)
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.43.0.10", []string{"10.43.0.10"}
		svc.Spec.Ports[0].NodePort = 30080
		return svc
	}
	runUpdate(t, serviceResource, false, lb, []validationCase[*corev1.Service]{
		{"to ClusterIP drops node ports", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }, nil},
		{"to ClusterIP with a new node port", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeClusterIP, 30081
		}, []string{errKey(forbidden, "spec.ports[0].nodePort")}},
		{"to ExternalName drops cluster IPs", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "web.example.com"
		}, nil},
		{"to NodePort drops load balancer fields", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }, nil},
		{"to NodePort with a new class", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.LoadBalancerClass = corev1.ServiceTypeNodePort, ptrTo("example.com/lb")
		}, []string{errKey(forbidden, "spec.loadBalancerClass")}},
		{"class immutable", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptrTo("example.com/lb") },
			[]string{errKey(invalid, "spec.loadBalancerClass")}},
	})

	old := lb()
	svc := old.DeepCopy()
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	serviceResource.PrepareForUpdate(svc, old)
	got := []interface{}{svc.Spec.Ports[0].NodePort, svc.Spec.ExternalTrafficPolicy, svc.Spec.AllocateLoadBalancerNodePorts, svc.Spec.ClusterIP, svc.Spec.LoadBalancerClass}
	want := []interface{}{int32(0), corev1.ServiceExternalTrafficPolicy(""), (*bool)(nil), "10.43.0.10", (*string)(nil)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadBalancer to ClusterIP (nodePort, externalTrafficPolicy, allocateLoadBalancerNodePorts, clusterIP, loadBalancerClass) (-want +got):\n%s", diff)
	}
}

func TestServiceStatusUpdate(t *testing.T) {
	base := func() *corev1.Service { return stored(serviceResource, testService()) }
	runUpdate(t, serviceResource, true, base, []validationCase[*corev1.Service]{
		{"ingress", func(s *corev1.Service) {
			s.Spec.Ports = nil // ignored
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}, {Hostname: "lb.example.com"}}
		}, nil},
		{"ingress IP", func(s *corev1.Service) { s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3"}} },
			[]string{errKey(invalid, "status.loadBalancer.ingress[0].ip")}},
	})
}

func TestServiceFieldSet(t *testing.T) {
	svc := validService()
	svc.Spec.ClusterIP = "10.43.0.10"
	want := fields.Set{"metadata.name": "web", "metadata.namespace": "default", "spec.clusterIP": "10.43.0.10", "spec.type": "ClusterIP"}
	if diff := cmp.Diff(want, serviceResource.FieldSet(svc)); diff != "" {
		t.Errorf("FieldSet (-want +got):\n%s", diff)
	}
}

func TestServiceRow(t *testing.T) {
	svc := func(typ corev1.ServiceType, mutate func(*corev1.Service)) *corev1.Service {
		s := testService()
		s.CreationTimestamp = ago(3 * 24 * time.Hour)
		s.Spec.Type = typ
		s.Spec.ClusterIP = "10.43.0.10"
		mutate(s)
		return s
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		want []interface{}
	}{
		{"cluster IP", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}
		}), []interface{}{"web", "ClusterIP", "10.43.0.10", "<none>", "80/TCP,53/UDP", "3d", "app=web"}},
		{"headless without selector", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.Ports, s.Spec.Selector = "None", nil, nil
		}), []interface{}{"web", "ClusterIP", "None", "<none>", "<none>", "3d", "<none>"}},
		{"node port with external IP", svc(corev1.ServiceTypeNodePort, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 443, NodePort: 30443, Protocol: "TCP"}}
			s.Spec.ExternalIPs = []string{"192.0.2.1"}
		}), []interface{}{"web", "NodePort", "10.43.0.10", "192.0.2.1", "443:30443/TCP", "3d", "app=web"}},
		{"load balancer pending", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: "TCP"}}
		}), []interface{}{"web", "LoadBalancer", "10.43.0.10", "<pending>", "80:30080/TCP", "3d", "app=web"}},
		{"load balancer ready", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: "TCP"}}
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}, {Hostname: "lb.example.com"}}
		}), []interface{}{"web", "LoadBalancer", "10.43.0.10", "203.0.113.5,lb.example.com", "80:30080/TCP", "3d", "app=web"}},
		{"external name", svc(corev1.ServiceTypeExternalName, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ExternalName, s.Spec.Ports, s.Spec.Selector = "", "db.example.com", nil, nil
		}), []interface{}{"web", "ExternalName", "<none>", "db.example.com", "<none>", "3d", "<none>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, serviceRow(tc.svc, testNow)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServiceAffinitySwitchedOff: a Service switched from ClientIP back to
// no affinity, its old config still in the request, drops the config and
// is valid, as upstream's defaults make it.
func TestServiceAffinitySwitchedOff(t *testing.T) {
	old := testService()
	old.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	serviceResource.PrepareForCreate(old)
	if old.Spec.SessionAffinityConfig == nil {
		t.Fatal("ClientIP affinity got no default config")
	}
	svc := old.DeepCopy()
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	serviceResource.PrepareForUpdate(svc, old)
	if svc.Spec.SessionAffinityConfig != nil {
		t.Errorf("sessionAffinityConfig = %+v after switching to None, want none", svc.Spec.SessionAffinityConfig)
	}
	if errs := serviceResource.ValidateUpdate(svc, old); len(errs) > 0 {
		t.Errorf("ValidateUpdate = %v, want valid", errs)
	}
}
