package registry

import (
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupNetworking is the API group of Ingress and IngressClass. minik
// routes no Ingress itself: it keeps them for the ingress controller a
// cluster runs.
const GroupNetworking = "networking.k8s.io"

var (
	ingressResource      = newIngressResource()
	ingressClassResource = newIngressClassResource()
)

func newIngressResource() *Resource {
	r := &Resource{
		Name: "ingresses", Singular: "ingress", Kind: "Ingress", Group: GroupNetworking,
		ShortNames: []string{"ing"}, Namespaced: true, HasStatus: true,
		New:     func() runtime.Object { return &networkingv1.Ingress{} },
		NewList: func() runtime.Object { return &networkingv1.IngressList{} },

		PrepareForCreate: mutate(func(i *networkingv1.Ingress) {
			i.Status = networkingv1.IngressStatus{}
			i.Generation = 1
		}),
		PrepareForUpdate: mutatePair(func(i, old *networkingv1.Ingress) {
			i.Status = old.Status
			nextGeneration(&i.ObjectMeta, &old.ObjectMeta, i.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(i, old *networkingv1.Ingress) {
			i.Spec = old.Spec
			i.Generation = old.Generation
		}),
		ValidateCreate: check(validateIngress),
		ValidateUpdate: checkPair(func(i, old *networkingv1.Ingress) field.ErrorList {
			return append(validateMetaUpdate(&i.ObjectMeta, &old.ObjectMeta), validateIngress(i)...)
		}),
		ValidateStatusUpdate: checkPair(func(i, old *networkingv1.Ingress) field.ErrorList {
			errs := validateMetaUpdate(&i.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateIngressStatus(&i.Status)...)
		}),
		FieldSet: selectable(func(i *networkingv1.Ingress) fields.Set { return metaFields(&i.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Class", "string", networkingv1.IngressSpec{}.SwaggerDoc()["ingressClassName"], false),
			column("Hosts", "string", networkingv1.IngressRule{}.SwaggerDoc()["host"], false),
			column("Address", "string", networkingv1.IngressStatus{}.SwaggerDoc()["loadBalancer"], false),
			column("Ports", "string", "The ports of the ingress.", false),
			ageColumn(),
		},
		Row: printable(func(i *networkingv1.Ingress, now time.Time) []interface{} {
			class := none
			if i.Spec.IngressClassName != nil {
				class = *i.Spec.IngressClassName
			}
			var hosts, addrs []string
			for _, rule := range i.Spec.Rules {
				if rule.Host != "" {
					hosts = append(hosts, rule.Host)
				}
			}
			if len(hosts) == 0 {
				hosts = []string{"*"}
			}
			for _, lb := range i.Status.LoadBalancer.Ingress {
				addrs = append(addrs, lb.IP+lb.Hostname)
			}
			ports := "80"
			if len(i.Spec.TLS) > 0 {
				ports = "80, 443"
			}
			return []interface{}{i.Name, class, strings.Join(hosts, ","), strings.Join(addrs, ","), ports, since(i.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// validateIngress checks an Ingress as Kubernetes does: rules or a
// default backend, hosts that are DNS names (a leading "*." allowed),
// paths with a known type, and backends that name a service port or a
// resource, not both.
func validateIngress(i *networkingv1.Ingress) field.ErrorList {
	errs := validateMeta(&i.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	spec := field.NewPath("spec")
	if len(i.Spec.Rules) == 0 && i.Spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(spec, "", "either `defaultBackend` or `rules` must be specified"))
	}
	if i.Spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(i.Spec.DefaultBackend, spec.Child("defaultBackend"))...)
	}
	if c := i.Spec.IngressClassName; c != nil {
		errs = append(errs, validateDNSSubdomain(*c, spec.Child("ingressClassName"))...)
	}
	for ri, rule := range i.Spec.Rules {
		rp := spec.Child("rules").Index(ri)
		if rule.Host != "" {
			errs = append(errs, validateIngressHost(rule.Host, rp.Child("host"))...)
		}
		if rule.HTTP == nil {
			continue
		}
		hp := rp.Child("http", "paths")
		if len(rule.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(hp, ""))
		}
		for pi, p := range rule.HTTP.Paths {
			pp := hp.Index(pi)
			switch {
			case p.PathType == nil:
				errs = append(errs, field.Required(pp.Child("pathType"), "pathType must be specified"))
			case *p.PathType == networkingv1.PathTypeExact || *p.PathType == networkingv1.PathTypePrefix:
				if !strings.HasPrefix(p.Path, "/") {
					errs = append(errs, field.Invalid(pp.Child("path"), p.Path, "must be an absolute path"))
				}
				if strings.Contains(p.Path, "//") {
					errs = append(errs, field.Invalid(pp.Child("path"), p.Path, "must not contain '//'"))
				}
			case *p.PathType == networkingv1.PathTypeImplementationSpecific:
				if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
					errs = append(errs, field.Invalid(pp.Child("path"), p.Path, "must be an absolute path"))
				}
			default:
				errs = append(errs, validateEnum(*p.PathType, pp.Child("pathType"), networkingv1.PathTypeExact,
					networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific)...)
			}
			errs = append(errs, validateIngressBackend(&p.Backend, pp.Child("backend"))...)
		}
	}
	for ti, tls := range i.Spec.TLS {
		for hi, h := range tls.Hosts {
			errs = append(errs, validateIngressHost(h, spec.Child("tls").Index(ti).Child("hosts").Index(hi))...)
		}
		if tls.SecretName != "" {
			errs = append(errs, validateDNSSubdomain(tls.SecretName, spec.Child("tls").Index(ti).Child("secretName"))...)
		}
	}
	return errs
}

func validateIngressHost(host string, path *field.Path) field.ErrorList {
	if strings.Contains(host, "*") {
		return messages(path, host, validation.IsWildcardDNS1123Subdomain(host))
	}
	errs := messages(path, host, validation.IsDNS1123Subdomain(host))
	if validation.IsValidIP(path, host) == nil {
		errs = append(errs, field.Invalid(path, host, "must be a DNS name, not an IP address"))
	}
	return errs
}

func validateIngressBackend(b *networkingv1.IngressBackend, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case b.Service != nil && b.Resource != nil:
		errs = append(errs, field.Invalid(path, "", "cannot set both resource and service backends"))
	case b.Service != nil:
		sp := path.Child("service")
		if b.Service.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		} else {
			errs = append(errs, validateDNSLabel(b.Service.Name, sp.Child("name"))...)
		}
		port := b.Service.Port
		switch {
		case port.Name != "" && port.Number != 0:
			errs = append(errs, field.Invalid(sp.Child("port"), port, "cannot set both port name & port number"))
		case port.Name != "":
			errs = append(errs, validatePortName(port.Name, sp.Child("port", "name"))...)
		case port.Number != 0:
			errs = append(errs, validatePort(port.Number, sp.Child("port", "number"))...)
		default:
			errs = append(errs, field.Required(sp.Child("port"), "port name or number is required"))
		}
	case b.Resource != nil:
		if b.Resource.Kind == "" {
			errs = append(errs, field.Required(path.Child("resource", "kind"), ""))
		}
		if b.Resource.Name == "" {
			errs = append(errs, field.Required(path.Child("resource", "name"), ""))
		}
	default:
		errs = append(errs, field.Invalid(path, "", "resource or service backend is required"))
	}
	return errs
}

func validateIngressStatus(s *networkingv1.IngressStatus) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "loadBalancer", "ingress")
	for i, lb := range s.LoadBalancer.Ingress {
		if lb.IP != "" {
			errs = append(errs, validation.IsValidIP(p.Index(i).Child("ip"), lb.IP)...)
		}
		if lb.Hostname != "" {
			errs = append(errs, messages(p.Index(i).Child("hostname"), lb.Hostname, validation.IsDNS1123Subdomain(lb.Hostname))...)
		}
	}
	return errs
}

func newIngressClassResource() *Resource {
	return plainResource(&Resource{
		Name: "ingressclasses", Singular: "ingressclass", Kind: "IngressClass", Group: GroupNetworking,
		New:     func() runtime.Object { return &networkingv1.IngressClass{} },
		NewList: func() runtime.Object { return &networkingv1.IngressClassList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Controller", "string", networkingv1.IngressClassSpec{}.SwaggerDoc()["controller"], false),
			column("Parameters", "string", networkingv1.IngressClassSpec{}.SwaggerDoc()["parameters"], false),
			ageColumn(),
		},
		Row: printable(func(c *networkingv1.IngressClass, now time.Time) []interface{} {
			params := none
			if p := c.Spec.Parameters; p != nil {
				params = p.Kind + "/" + p.Name
			}
			return []interface{}{c.Name, c.Spec.Controller, params, since(c.CreationTimestamp.Time, now)}
		}),
	}, validateIngressClass, func(c, old *networkingv1.IngressClass) field.ErrorList {
		return immutable(nil, field.NewPath("spec", "controller"), c.Spec.Controller, old.Spec.Controller)
	})
}

// validateIngressClass checks an IngressClass as Kubernetes does: a
// domain-prefixed controller name, and parameters whose scope matches
// whether they name a namespace.
func validateIngressClass(c *networkingv1.IngressClass) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	sp := field.NewPath("spec")
	switch ctl := c.Spec.Controller; {
	case ctl == "":
		errs = append(errs, field.Required(sp.Child("controller"), ""))
	case len(ctl) > 250:
		errs = append(errs, field.TooLong(sp.Child("controller"), ctl, 250))
	default:
		errs = append(errs, validation.IsDomainPrefixedPath(sp.Child("controller"), ctl)...)
	}
	if p := c.Spec.Parameters; p != nil {
		pp := sp.Child("parameters")
		if p.Kind == "" {
			errs = append(errs, field.Required(pp.Child("kind"), ""))
		}
		if p.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		}
		scope := ptrOr(p.Scope, "")
		switch scope {
		case networkingv1.IngressClassParametersReferenceScopeNamespace:
			if p.Namespace == nil || *p.Namespace == "" {
				errs = append(errs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
			}
		case networkingv1.IngressClassParametersReferenceScopeCluster:
			if p.Namespace != nil {
				errs = append(errs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
			}
		case "":
			errs = append(errs, field.Required(pp.Child("scope"), ""))
		default:
			errs = append(errs, validateEnum(scope, pp.Child("scope"), networkingv1.IngressClassParametersReferenceScopeNamespace,
				networkingv1.IngressClassParametersReferenceScopeCluster)...)
		}
	}
	return errs
}
