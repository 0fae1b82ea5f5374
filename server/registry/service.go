package registry

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// defaultAffinityTimeoutSeconds is how long ClientIP session affinity
// sticks by default (3 hours).
const defaultAffinityTimeoutSeconds = 10800

var serviceResource = newServiceResource()

func newServiceResource() *Resource {
	r := &Resource{
		Name:       "services",
		Singular:   "service",
		Kind:       "Service",
		ShortNames: []string{"svc"},
		Namespaced: true,
		HasStatus:  true,

		New:     func() runtime.Object { return &corev1.Service{} },
		NewList: func() runtime.Object { return &corev1.ServiceList{} },

		PrepareForCreate:       mutate(prepareServiceForCreate),
		PrepareForUpdate:       mutatePair(prepareServiceForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareServiceForStatusUpdate),

		ValidateCreate:       check(validateService),
		ValidateUpdate:       checkPair(validateServiceUpdate),
		ValidateStatusUpdate: checkPair(validateServiceStatusUpdate),

		FieldSet: selectable(serviceFields),
		Columns:  serviceColumns,
		Row:      printable(serviceRow),
	}
	notScalable(r)
	return r
}

func prepareServiceForCreate(svc *corev1.Service) {
	defaultService(svc)
	svc.Generation = 1
	svc.Status = corev1.ServiceStatus{}
}

// prepareServiceForUpdate keeps what the API server allocated (cluster
// IPs, node ports) when the update leaves it out, as a PUT of the
// original manifest does, and drops it when the service changes to a
// type without it.
func prepareServiceForUpdate(svc, old *corev1.Service) {
	dropTypeFields(&svc.Spec, &old.Spec)
	keepAllocated(&svc.Spec, &old.Spec)
	defaultService(svc)
	svc.Status = old.Status
	nextGeneration(&svc.ObjectMeta, &old.ObjectMeta, svc.Spec, old.Spec)
}

func prepareServiceForStatusUpdate(svc, old *corev1.Service) {
	svc.Spec = old.Spec
	svc.Generation = old.Generation
}

// keepAllocated copies old's cluster IPs and node ports into spec where
// spec leaves them unset and the service type still uses them.
func keepAllocated(spec, old *corev1.ServiceSpec) {
	if spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if spec.ClusterIP == "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIP = old.ClusterIP
		spec.ClusterIPs = append([]string(nil), old.ClusterIPs...)
	}
	if !usesNodePorts(spec.Type) {
		return
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		for _, o := range old.Ports {
			if p.NodePort == 0 && p.Port == o.Port && protocolOrTCP(p.Protocol) == protocolOrTCP(o.Protocol) {
				p.NodePort = o.NodePort
			}
		}
	}
	if spec.HealthCheckNodePort == 0 && spec.ExternalTrafficPolicy == old.ExternalTrafficPolicy {
		spec.HealthCheckNodePort = old.HealthCheckNodePort
	}
}

// dropTypeFields clears what old's type needed and spec's type does not
// allow, when spec carries it unchanged from old: a patch that only
// changes the type leaves the old values in the merged object.
func dropTypeFields(spec, old *corev1.ServiceSpec) {
	if spec.Type == corev1.ServiceTypeExternalName && old.Type != spec.Type &&
		spec.ClusterIP == old.ClusterIP && slices.Equal(spec.ClusterIPs, old.ClusterIPs) {
		spec.ClusterIP, spec.ClusterIPs = "", nil
		spec.IPFamilies, spec.IPFamilyPolicy, spec.InternalTrafficPolicy = nil, nil, nil
	}
	if old.Type == corev1.ServiceTypeLoadBalancer && spec.Type != old.Type {
		if reflect.DeepEqual(spec.LoadBalancerClass, old.LoadBalancerClass) {
			spec.LoadBalancerClass = nil
		}
		if reflect.DeepEqual(spec.AllocateLoadBalancerNodePorts, old.AllocateLoadBalancerNodePorts) {
			spec.AllocateLoadBalancerNodePorts = nil
		}
	}
	if !usesNodePorts(old.Type) || usesNodePorts(spec.Type) {
		return
	}
	if sameNodePorts(spec.Ports, old.Ports) {
		for i := range spec.Ports {
			spec.Ports[i].NodePort = 0
		}
	}
	if spec.ExternalTrafficPolicy == old.ExternalTrafficPolicy {
		spec.ExternalTrafficPolicy = ""
	}
	if spec.HealthCheckNodePort == old.HealthCheckNodePort {
		spec.HealthCheckNodePort = 0
	}
	if reflect.DeepEqual(spec.AllocateLoadBalancerNodePorts, old.AllocateLoadBalancerNodePorts) {
		spec.AllocateLoadBalancerNodePorts = nil
	}
}

// sameNodePorts reports whether every node port in ports is one of old's.
func sameNodePorts(ports, old []corev1.ServicePort) bool {
	had := map[int32]bool{}
	for _, p := range old {
		had[p.NodePort] = true
	}
	for _, p := range ports {
		if p.NodePort != 0 && !had[p.NodePort] {
			return false
		}
	}
	return true
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func usesNodePorts(t corev1.ServiceType) bool {
	return t == corev1.ServiceTypeNodePort || t == corev1.ServiceTypeLoadBalancer
}

func defaultService(svc *corev1.Service) {
	s := &svc.Spec
	if s.Type == "" {
		s.Type = corev1.ServiceTypeClusterIP
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = corev1.ServiceAffinityNone
	}
	switch s.SessionAffinity {
	case corev1.ServiceAffinityClientIP:
		defaultAffinityConfig(s)
	case corev1.ServiceAffinityNone:
		// As upstream's defaults: a Service switched back to no affinity
		// drops the config of the one it had.
		s.SessionAffinityConfig = nil
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		p.Protocol = protocolOrTCP(p.Protocol)
		if p.TargetPort == (intstr.IntOrString{}) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if s.Type == corev1.ServiceTypeExternalName {
		return
	}
	defaultTrafficPolicies(s)
	if s.IPFamilyPolicy == nil {
		s.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
	}
	if len(s.IPFamilies) == 0 {
		s.IPFamilies = []corev1.IPFamily{ipFamilyOf(s.ClusterIP)}
	}
}

func defaultAffinityConfig(s *corev1.ServiceSpec) {
	if s.SessionAffinityConfig == nil {
		s.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
	}
	if s.SessionAffinityConfig.ClientIP == nil {
		s.SessionAffinityConfig.ClientIP = &corev1.ClientIPConfig{}
	}
	if s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
		s.SessionAffinityConfig.ClientIP.TimeoutSeconds = ptrTo[int32](defaultAffinityTimeoutSeconds)
	}
}

func defaultTrafficPolicies(s *corev1.ServiceSpec) {
	if s.InternalTrafficPolicy == nil {
		s.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyCluster)
	}
	if usesNodePorts(s.Type) && s.ExternalTrafficPolicy == "" {
		s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if s.Type == corev1.ServiceTypeLoadBalancer && s.AllocateLoadBalancerNodePorts == nil {
		s.AllocateLoadBalancerNodePorts = ptrTo(true)
	}
}

// ipFamilyOf is the family of a requested cluster IP; IPv4 unless the
// client asked for an IPv6 address.
func ipFamilyOf(ip string) corev1.IPFamily {
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

func serviceFields(svc *corev1.Service) fields.Set {
	return metaFields(&svc.ObjectMeta, fields.Set{
		"spec.clusterIP": svc.Spec.ClusterIP,
		"spec.type":      string(svc.Spec.Type),
	})
}

var serviceColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Type", "string", corev1.ServiceSpec{}.SwaggerDoc()["type"], false),
	column("Cluster-IP", "string", corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"], false),
	column("External-IP", "string", corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"], false),
	column("Port(s)", "string", corev1.ServiceSpec{}.SwaggerDoc()["ports"], false),
	ageColumn(),
	column("Selector", "string", corev1.ServiceSpec{}.SwaggerDoc()["selector"], true),
}

func serviceRow(svc *corev1.Service, now time.Time) []interface{} {
	return []interface{}{
		svc.Name,
		string(svc.Spec.Type),
		orNone(svc.Spec.ClusterIP),
		externalIP(svc),
		orNone(servicePorts(svc.Spec.Ports)),
		since(svc.CreationTimestamp.Time, now),
		labels.FormatLabels(svc.Spec.Selector),
	}
}

// externalIP is the EXTERNAL-IP cell: the external IPs, for a load
// balancer also its ingress points (<pending> until it has one), for an
// ExternalName service the external name.
func externalIP(svc *corev1.Service) string {
	ips := svc.Spec.ExternalIPs
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		var all []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				all = append(all, in.IP)
			} else if in.Hostname != "" {
				all = append(all, in.Hostname)
			}
		}
		if len(all) == 0 && len(ips) == 0 {
			return "<pending>"
		}
		ips = append(all, ips...)
	}
	return orNone(strings.Join(ips, ","))
}

// servicePorts prints ports as kubectl does: "80/TCP,443:30443/TCP".
func servicePorts(ports []corev1.ServicePort) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			s[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			s[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(s, ",")
}
