package registry

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupDiscovery is the API group of EndpointSlice.
const GroupDiscovery = "discovery.k8s.io"

// Limits of an EndpointSlice, as in Kubernetes.
const (
	MaxSliceEndpoints = 1000 // endpoints in one slice
	maxSliceAddresses = 100  // addresses of one endpoint
	maxSlicePorts     = 100  // ports of one slice
	maxTopologyLabels = 16   // deprecatedTopology labels of one endpoint
	maxZoneHints      = 8    // hints.forZones of one endpoint
)

var endpointSliceResource = newEndpointSliceResource()

func newEndpointSliceResource() *Resource {
	r := &Resource{
		Name:       "endpointslices",
		Singular:   "endpointslice",
		Kind:       "EndpointSlice",
		Group:      GroupDiscovery,
		Namespaced: true,

		New:     func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} },

		PrepareForCreate:       mutate(defaultEndpointSlice),
		PrepareForUpdate:       mutatePair(prepareEndpointSliceForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareEndpointSliceForStatusUpdate),

		ValidateCreate:       check(validateEndpointSlice),
		ValidateUpdate:       checkPair(validateEndpointSliceUpdate),
		ValidateStatusUpdate: checkPair(validateEndpointSliceUpdate),

		FieldSet: selectable(func(s *discoveryv1.EndpointSlice) fields.Set { return metaFields(&s.ObjectMeta, nil) }),
		Columns:  endpointSliceColumns,
		Row:      printable(endpointSliceRow),
	}
	notScalable(r)
	return r
}

// defaultEndpointSlice gives every port a name ("") and a protocol (TCP),
// as Kubernetes defaults them; slices have no spec or status.
func defaultEndpointSlice(s *discoveryv1.EndpointSlice) {
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Name == nil {
			p.Name = ptrTo("")
		}
		if p.Protocol == nil {
			p.Protocol = ptrTo(corev1.ProtocolTCP)
		}
	}
}

func prepareEndpointSliceForUpdate(s, old *discoveryv1.EndpointSlice) {
	defaultEndpointSlice(s)
	s.Generation = old.Generation
}

// prepareEndpointSliceForStatusUpdate keeps everything but metadata:
// slices have no status subresource.
func prepareEndpointSliceForStatusUpdate(s, old *discoveryv1.EndpointSlice) {
	meta := s.ObjectMeta
	*s = *old.DeepCopy()
	s.ObjectMeta = meta
	s.Generation = old.Generation
}

func validateEndpointSlice(s *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateEndpointSliceFields(s)...)
}

func validateEndpointSliceUpdate(s, old *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateEndpointSliceFields(s)...)
	return append(errs, apivalidation.ValidateImmutableField(s.AddressType, old.AddressType, field.NewPath("addressType"))...)
}

func validateEndpointSliceFields(s *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateEnum(s.AddressType, field.NewPath("addressType"),
		discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)
	errs = append(errs, validateSliceEndpoints(s.Endpoints, s.AddressType, field.NewPath("endpoints"))...)
	return append(errs, validateSlicePorts(s.Ports, field.NewPath("ports"))...)
}

func validateSliceEndpoints(eps []discoveryv1.Endpoint, at discoveryv1.AddressType, path *field.Path) field.ErrorList {
	if len(eps) > MaxSliceEndpoints {
		return field.ErrorList{field.TooMany(path, len(eps), MaxSliceEndpoints)}
	}
	var errs field.ErrorList
	for i := range eps {
		errs = append(errs, validateSliceEndpoint(&eps[i], at, path.Index(i))...)
	}
	return errs
}

func validateSliceEndpoint(ep *discoveryv1.Endpoint, at discoveryv1.AddressType, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	addrPath := path.Child("addresses")
	switch n := len(ep.Addresses); {
	case n == 0:
		errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
	case n > maxSliceAddresses:
		errs = append(errs, field.TooMany(addrPath, n, maxSliceAddresses))
	}
	for i, a := range ep.Addresses {
		errs = append(errs, validateSliceAddress(a, at, addrPath.Index(i))...)
	}
	if ep.NodeName != nil {
		errs = append(errs, validateDNSSubdomain(*ep.NodeName, path.Child("nodeName"))...)
	}
	if ep.Hostname != nil {
		errs = append(errs, validateDNSLabel(*ep.Hostname, path.Child("hostname"))...)
	}
	topoPath := path.Child("deprecatedTopology")
	if len(ep.DeprecatedTopology) > maxTopologyLabels {
		errs = append(errs, field.TooMany(topoPath, len(ep.DeprecatedTopology), maxTopologyLabels))
	}
	errs = append(errs, v1validation.ValidateLabels(ep.DeprecatedTopology, topoPath)...)
	if h := ep.Hints; h != nil && len(h.ForZones) > maxZoneHints {
		errs = append(errs, field.TooMany(path.Child("hints", "forZones"), len(h.ForZones), maxZoneHints))
	}
	return errs
}

// validateSliceAddress checks one address by the slice's address type:
// an IP of the family that is not special (loopback, link-local, …), or
// a fully qualified domain name.
func validateSliceAddress(a string, at discoveryv1.AddressType, path *field.Path) field.ErrorList {
	switch at {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := validation.IsValidIP(path, a); len(errs) > 0 {
			return errs
		}
		if ip, _ := netip.ParseAddr(a); ip.Is4() != (at == discoveryv1.AddressTypeIPv4) {
			return field.ErrorList{field.Invalid(path, a, "must be an "+string(at)+" address")}
		}
		return validateNonSpecialIP(a, path)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(path, a)
	}
	return nil
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, path *field.Path) field.ErrorList {
	if len(ports) > maxSlicePorts {
		return field.ErrorList{field.TooMany(path, len(ports), maxSlicePorts)}
	}
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		pp := path.Index(i)
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != "" {
			errs = append(errs, validateDNSLabel(name, pp.Child("name"))...)
		}
		if names[name] {
			errs = append(errs, field.Duplicate(pp.Child("name"), name))
		}
		names[name] = true
		if p.Protocol == nil {
			errs = append(errs, field.Required(pp.Child("protocol"), ""))
		} else {
			errs = append(errs, validateEnum(*p.Protocol, pp.Child("protocol"), protocols...)...)
		}
		if p.Port != nil {
			errs = append(errs, messages(pp.Child("port"), *p.Port, validation.IsValidPortNum(int(*p.Port)))...)
		}
		if p.AppProtocol != nil {
			errs = append(errs, messages(pp.Child("appProtocol"), *p.AppProtocol, validation.IsQualifiedName(*p.AppProtocol))...)
		}
	}
	return errs
}

var endpointSliceColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("AddressType", "string", discoveryv1.EndpointSlice{}.SwaggerDoc()["addressType"], false),
	column("Ports", "string", discoveryv1.EndpointSlice{}.SwaggerDoc()["ports"], false),
	column("Endpoints", "string", discoveryv1.EndpointSlice{}.SwaggerDoc()["endpoints"], false),
	ageColumn(),
}

func endpointSliceRow(s *discoveryv1.EndpointSlice, now time.Time) []interface{} {
	return []interface{}{
		s.Name, string(s.AddressType), slicePorts(s.Ports), sliceAddresses(s.Endpoints),
		since(s.CreationTimestamp.Time, now),
	}
}

// slicePorts prints the first ports (a name for a port without number,
// "*" for neither) as kubectl does.
func slicePorts(ports []discoveryv1.EndpointPort) string {
	var cells []string
	for _, p := range ports {
		switch {
		case p.Port != nil:
			cells = append(cells, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			cells = append(cells, *p.Name)
		default:
			cells = append(cells, "*")
		}
	}
	return firstOfList(cells)
}

func sliceAddresses(eps []discoveryv1.Endpoint) string {
	var cells []string
	for _, ep := range eps {
		cells = append(cells, ep.Addresses...)
	}
	return firstOfList(cells)
}

// firstOfList joins the first maxEndpointsShown cells, then says how
// many more there are; an empty list is <unset>.
func firstOfList(cells []string) string {
	if len(cells) == 0 {
		return "<unset>"
	}
	if len(cells) <= maxEndpointsShown {
		return strings.Join(cells, ",")
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(cells[:maxEndpointsShown], ","), len(cells)-maxEndpointsShown)
}
