package registry

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxEndpointsShown is how many addresses the ENDPOINTS column lists
// before it says how many more there are.
const maxEndpointsShown = 3

var endpointsResource = newEndpointsResource()

func newEndpointsResource() *Resource {
	r := &Resource{
		Name:       "endpoints",
		Singular:   "endpoints",
		Kind:       "Endpoints",
		ShortNames: []string{"ep"},
		Namespaced: true,

		New:     func() runtime.Object { return &corev1.Endpoints{} },
		NewList: func() runtime.Object { return &corev1.EndpointsList{} },

		PrepareForCreate:       mutate(defaultEndpoints),
		PrepareForUpdate:       mutatePair(prepareEndpointsForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareEndpointsForStatusUpdate),

		ValidateCreate:       check(validateEndpoints),
		ValidateUpdate:       checkPair(validateEndpointsUpdate),
		ValidateStatusUpdate: checkPair(validateEndpointsUpdate),

		FieldSet: selectable(func(ep *corev1.Endpoints) fields.Set { return metaFields(&ep.ObjectMeta, nil) }),
		Columns:  endpointsColumns,
		Row:      printable(endpointsRow),
	}
	notScalable(r)
	return r
}

// defaultEndpoints defaults port protocols to TCP. Endpoints have no spec
// or status, so nothing else is prepared.
func defaultEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			p := &ep.Subsets[i].Ports[j]
			p.Protocol = protocolOrTCP(p.Protocol)
		}
	}
}

func prepareEndpointsForUpdate(ep, old *corev1.Endpoints) {
	defaultEndpoints(ep)
	ep.Generation = old.Generation
}

// prepareEndpointsForStatusUpdate keeps everything but metadata:
// endpoints have no status (and no status subresource).
func prepareEndpointsForStatusUpdate(ep, old *corev1.Endpoints) {
	ep.Subsets = old.Subsets
	ep.Generation = old.Generation
}

func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	errs := validateMeta(&ep.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateSubsets(ep.Subsets)...)
}

func validateEndpointsUpdate(ep, old *corev1.Endpoints) field.ErrorList {
	errs := validateMetaUpdate(&ep.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateSubsets(ep.Subsets)...)
}

func validateSubsets(subsets []corev1.EndpointSubset) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range subsets {
		sp := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(sp, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, a := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(a, sp.Child("addresses").Index(j))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(a, sp.Child("notReadyAddresses").Index(j))...)
		}
		errs = append(errs, validateEndpointPorts(ss.Ports, sp.Child("ports"))...)
	}
	return errs
}

// validateEndpointAddress requires an IP a proxy can send traffic to:
// not unspecified, loopback, link-local or multicast.
func validateEndpointAddress(a corev1.EndpointAddress, path *field.Path) field.ErrorList {
	ipPath := path.Child("ip")
	errs := validateIP(a.IP, ipPath)
	if len(errs) == 0 {
		errs = validateNonSpecialIP(a.IP, ipPath)
	}
	if a.Hostname != "" {
		errs = append(errs, validateDNSLabel(a.Hostname, path.Child("hostname"))...)
	}
	if a.NodeName != nil && *a.NodeName != "" {
		errs = append(errs, validateDNSSubdomain(*a.NodeName, path.Child("nodeName"))...)
	}
	return errs
}

// validateNonSpecialIP refuses an IP a proxy cannot send traffic to:
// unspecified, loopback, link-local or multicast. ip must parse.
func validateNonSpecialIP(ip string, path *field.Path) field.ErrorList {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil
	}
	switch {
	case addr.IsUnspecified():
		return field.ErrorList{field.Invalid(path, ip, "may not be unspecified (0.0.0.0 or ::)")}
	case addr.IsLoopback():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case addr.IsMulticast():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the multicast range")}
	}
	return nil
}

func validateEndpointPorts(ports []corev1.EndpointPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		pp := path.Index(i)
		switch {
		case p.Name == "" && len(ports) > 1:
			errs = append(errs, field.Required(pp.Child("name"), ""))
		case p.Name != "" && names[p.Name]:
			errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
		case p.Name != "":
			errs = append(errs, validateDNSLabel(p.Name, pp.Child("name"))...)
		}
		names[p.Name] = true
		errs = append(errs, validatePort(p.Port, pp.Child("port"))...)
		errs = append(errs, validateEnum(p.Protocol, pp.Child("protocol"), protocols...)...)
	}
	return errs
}

var endpointsColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"], false),
	ageColumn(),
}

func endpointsRow(ep *corev1.Endpoints, now time.Time) []interface{} {
	return []interface{}{ep.Name, formatEndpoints(ep), since(ep.CreationTimestamp.Time, now)}
}

// formatEndpoints lists the first ready addresses as ip:port, port by
// port (just ip for a subset without ports), and how many more there
// are: "10.42.0.5:80,10.42.0.6:80,10.42.0.7:80 + 2 more...".
func formatEndpoints(ep *corev1.Endpoints) string {
	var shown []string
	total := 0
	add := func(s string) {
		total++
		if len(shown) < maxEndpointsShown {
			shown = append(shown, s)
		}
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				add(a.IP)
			}
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	s := orNone(strings.Join(shown, ","))
	if total > len(shown) {
		s += fmt.Sprintf(" + %d more...", total-len(shown))
	}
	return s
}
