package registry

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxAffinityTimeoutSeconds is the longest ClientIP affinity (one day).
const maxAffinityTimeoutSeconds = 86400

// validateService checks a service on create. Service names are DNS-1035
// labels, as in Kubernetes: they become DNS names and environment
// variable names, so they must start with a letter.
func validateService(svc *corev1.Service) field.ErrorList {
	errs := validateMeta(&svc.ObjectMeta, true, apivalidation.NameIsDNS1035Label)
	return append(errs, validateServiceSpec(&svc.Spec)...)
}

func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateServiceSpec(&svc.Spec)...)
	// The class picks the implementation that provisioned the load
	// balancer; it stays while the service is one.
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		!reflect.DeepEqual(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
		errs = append(errs, field.Invalid(specPath.Child("loadBalancerClass"), svc.Spec.LoadBalancerClass, "may not change once set"))
	}
	// An allocated cluster IP stays until the service becomes an
	// ExternalName service, which has none.
	if old.Spec.ClusterIP != "" && svc.Spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, apivalidation.ValidateImmutableField(svc.Spec.ClusterIP, old.Spec.ClusterIP, specPath.Child("clusterIP"))...)
	}
	return errs
}

func validateServiceStatusUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	ingPath := statusPath.Child("loadBalancer", "ingress")
	for i, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			errs = append(errs, validation.IsValidIP(ingPath.Index(i).Child("ip"), in.IP)...)
		}
		if in.Hostname != "" {
			errs = append(errs, validateDNSSubdomain(in.Hostname, ingPath.Index(i).Child("hostname"))...)
		}
	}
	return errs
}

func validateServiceSpec(s *corev1.ServiceSpec) field.ErrorList {
	errs := validateEnum(s.Type, specPath.Child("type"), corev1.ServiceTypeClusterIP,
		corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	errs = append(errs, validateServicePorts(s)...)
	errs = append(errs, validateClusterIP(s)...)
	errs = append(errs, validateAffinity(s)...)
	errs = append(errs, v1validation.ValidateLabels(s.Selector, specPath.Child("selector"))...)
	errs = append(errs, validateTrafficPolicies(s)...)
	errs = append(errs, validateIPFamilies(s)...)
	errs = append(errs, validateLoadBalancerFields(s)...)
	for i, ip := range s.ExternalIPs {
		errs = append(errs, validateIP(ip, specPath.Child("externalIPs").Index(i))...)
	}
	if s.Type == corev1.ServiceTypeExternalName {
		p := specPath.Child("externalName")
		if s.ExternalName == "" {
			errs = append(errs, field.Required(p, ""))
		} else {
			errs = append(errs, validateDNSSubdomain(strings.TrimSuffix(s.ExternalName, "."), p)...)
		}
	}
	return errs
}

// validateServicePorts requires ports except for headless and
// ExternalName services, names on every port of a multi-port service,
// and no port twice.
func validateServicePorts(s *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	path := specPath.Child("ports")
	if len(s.Ports) == 0 && s.ClusterIP != corev1.ClusterIPNone && s.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(path, ""))
	}
	names, ports := map[string]bool{}, map[string]bool{}
	for i, p := range s.Ports {
		pp := path.Index(i)
		switch {
		case p.Name == "" && len(s.Ports) > 1:
			errs = append(errs, field.Required(pp.Child("name"), ""))
		case p.Name != "" && names[p.Name]:
			errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
		case p.Name != "":
			errs = append(errs, validateDNSLabel(p.Name, pp.Child("name"))...)
		}
		names[p.Name] = true
		errs = append(errs, validatePort(p.Port, pp.Child("port"))...)
		errs = append(errs, validateEnum(p.Protocol, pp.Child("protocol"), protocols...)...)
		errs = append(errs, validateTargetPort(p.TargetPort, pp.Child("targetPort"))...)
		errs = append(errs, validateNodePort(p.NodePort, s.Type, pp.Child("nodePort"))...)
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if ports[key] {
			errs = append(errs, field.Duplicate(pp, key))
		}
		ports[key] = true
	}
	return errs
}

func validateTargetPort(p intstr.IntOrString, path *field.Path) field.ErrorList {
	if p.Type == intstr.String {
		if p.StrVal == "" {
			return field.ErrorList{field.Required(path, "")}
		}
		return validatePortName(p.StrVal, path)
	}
	return messages(path, p.IntVal, validation.IsValidPortNum(int(p.IntVal)))
}

func validateNodePort(port int32, t corev1.ServiceType, path *field.Path) field.ErrorList {
	switch {
	case port == 0:
		return nil
	case !usesNodePorts(t):
		return field.ErrorList{field.Forbidden(path, fmt.Sprintf("may not be used when `type` is '%s'", t))}
	}
	return messages(path, port, validation.IsValidPortNum(int(port)))
}

// validateClusterIP allows empty (allocate one), None (headless, for
// ClusterIP services) or an IP address; ExternalName services have none.
func validateClusterIP(s *corev1.ServiceSpec) field.ErrorList {
	path := specPath.Child("clusterIP")
	var errs field.ErrorList
	switch {
	case s.Type == corev1.ServiceTypeExternalName:
		if s.ClusterIP != "" {
			errs = append(errs, field.Forbidden(path, "may not be set for ExternalName services"))
		}
	case s.ClusterIP == corev1.ClusterIPNone:
		if s.Type != corev1.ServiceTypeClusterIP {
			errs = append(errs, field.Invalid(path, s.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", s.Type)))
		}
	case s.ClusterIP != "":
		errs = append(errs, validation.IsValidIP(path, s.ClusterIP)...)
	}
	if len(s.ClusterIPs) > 0 && s.ClusterIPs[0] != s.ClusterIP {
		errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), s.ClusterIPs[0], "must match `clusterIP`"))
	}
	return errs
}

func validateAffinity(s *corev1.ServiceSpec) field.ErrorList {
	errs := validateEnum(s.SessionAffinity, specPath.Child("sessionAffinity"),
		corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone)
	cfgPath := specPath.Child("sessionAffinityConfig")
	cfg := s.SessionAffinityConfig
	switch {
	case s.SessionAffinity != corev1.ServiceAffinityClientIP:
		if cfg != nil {
			errs = append(errs, field.Forbidden(cfgPath, fmt.Sprintf("must not be set when session affinity is %s", s.SessionAffinity)))
		}
	case cfg != nil && cfg.ClientIP != nil && cfg.ClientIP.TimeoutSeconds != nil:
		if t := *cfg.ClientIP.TimeoutSeconds; t < 1 || t > maxAffinityTimeoutSeconds {
			errs = append(errs, field.Invalid(cfgPath.Child("clientIP", "timeoutSeconds"), t, validation.InclusiveRangeError(1, maxAffinityTimeoutSeconds)))
		}
	}
	return errs
}

// validateLoadBalancerFields allows loadBalancerClass and
// allocateLoadBalancerNodePorts on LoadBalancer services only; a class is a
// label-style name, such as minik.dev/servicelb.
func validateLoadBalancerFields(s *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	lb := s.Type == corev1.ServiceTypeLoadBalancer
	if c := s.LoadBalancerClass; c != nil {
		p := specPath.Child("loadBalancerClass")
		if !lb {
			errs = append(errs, field.Forbidden(p, "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, messages(p, *c, validation.IsQualifiedName(*c))...)
		}
	}
	if s.AllocateLoadBalancerNodePorts != nil && !lb {
		errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	return errs
}

func validateTrafficPolicies(s *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	extPath := specPath.Child("externalTrafficPolicy")
	switch {
	case usesNodePorts(s.Type):
		errs = append(errs, validateEnum(s.ExternalTrafficPolicy, extPath,
			corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
	case s.ExternalTrafficPolicy != "":
		errs = append(errs, field.Invalid(extPath, s.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
	}
	if p := s.InternalTrafficPolicy; p != nil {
		errs = append(errs, validateEnum(*p, specPath.Child("internalTrafficPolicy"),
			corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
	}
	return errs
}

func validateIPFamilies(s *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	if p := s.IPFamilyPolicy; p != nil {
		errs = append(errs, validateEnum(*p, specPath.Child("ipFamilyPolicy"), corev1.IPFamilyPolicySingleStack,
			corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)...)
	}
	path := specPath.Child("ipFamilies")
	seen := map[corev1.IPFamily]bool{}
	for i, f := range s.IPFamilies {
		errs = append(errs, validateEnum(f, path.Index(i), corev1.IPv4Protocol, corev1.IPv6Protocol)...)
		if seen[f] {
			errs = append(errs, field.Duplicate(path.Index(i), f))
		}
		seen[f] = true
	}
	if len(s.IPFamilies) > 2 {
		errs = append(errs, field.TooMany(path, len(s.IPFamilies), 2))
	}
	return errs
}
