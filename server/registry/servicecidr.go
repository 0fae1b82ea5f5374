package registry

import (
	"net/netip"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ServiceCIDRs and IPAddresses describe the ranges Service cluster IPs
// come from and the addresses taken. minik allocates cluster IPs from
// the one range it is started with (--service-cidr), published as the
// ServiceCIDR "kubernetes"; other ServiceCIDRs and IPAddresses are kept
// as written, without widening or narrowing what the allocator uses.
var (
	serviceCIDRResource = newServiceCIDRResource()
	ipAddressResource   = newIPAddressResource()
)

func newServiceCIDRResource() *Resource {
	r := &Resource{
		Name: "servicecidrs", Singular: "servicecidr", Kind: "ServiceCIDR", Group: GroupNetworking,
		HasStatus: true,
		New:       func() runtime.Object { return &networkingv1.ServiceCIDR{} },
		NewList:   func() runtime.Object { return &networkingv1.ServiceCIDRList{} },

		PrepareForCreate: mutate(func(c *networkingv1.ServiceCIDR) {
			c.Status = networkingv1.ServiceCIDRStatus{}
			c.Generation = 1
		}),
		PrepareForUpdate: mutatePair(func(c, old *networkingv1.ServiceCIDR) {
			c.Status = old.Status
			nextGeneration(&c.ObjectMeta, &old.ObjectMeta, c.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(c, old *networkingv1.ServiceCIDR) {
			c.Spec = old.Spec
			c.Generation = old.Generation
		}),
		ValidateCreate: check(validateServiceCIDR),
		ValidateUpdate: checkPair(func(c, old *networkingv1.ServiceCIDR) field.ErrorList {
			errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateServiceCIDR(c)...)
			return append(errs, validateServiceCIDRUpdate(c.Spec.CIDRs, old.Spec.CIDRs)...)
		}),
		ValidateStatusUpdate: checkPair(func(c, old *networkingv1.ServiceCIDR) field.ErrorList {
			errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
			return append(errs, v1validation.ValidateConditions(c.Status.Conditions, statusPath.Child("conditions"))...)
		}),
		FieldSet: selectable(func(c *networkingv1.ServiceCIDR) fields.Set { return metaFields(&c.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("CIDRs", "string", networkingv1.ServiceCIDRSpec{}.SwaggerDoc()["cidrs"], false),
			ageColumn(),
		},
		Row: printable(func(c *networkingv1.ServiceCIDR, now time.Time) []interface{} {
			return []interface{}{c.Name, strings.Join(c.Spec.CIDRs, ","), since(c.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// validateServiceCIDR checks a ServiceCIDR as Kubernetes does: one or two
// CIDRs in canonical form, of different IP families.
func validateServiceCIDR(c *networkingv1.ServiceCIDR) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	p := specPath.Child("cidrs")
	cidrs := c.Spec.CIDRs
	switch {
	case len(cidrs) == 0:
		return append(errs, field.Required(p, "at least one CIDR required"))
	case len(cidrs) > 2:
		return append(errs, field.TooMany(p, len(cidrs), 2))
	}
	var prefixes []netip.Prefix
	for i, s := range cidrs {
		prefix, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Index(i), s, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
			continue
		case prefix.Masked() != prefix || prefix.String() != s:
			errs = append(errs, field.Invalid(p.Index(i), s, "must be in canonical form (\""+prefix.Masked().String()+"\")"))
			continue
		case prefix.Addr().Is4In6():
			errs = append(errs, field.Invalid(p.Index(i), s, "must not be an IPv4-mapped IPv6 prefix"))
			continue
		}
		prefixes = append(prefixes, prefix)
	}
	if len(prefixes) == 2 && prefixes[0].Addr().Is4() == prefixes[1].Addr().Is4() {
		errs = append(errs, field.Invalid(p, cidrs,
			"may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"))
	}
	return errs
}

// validateServiceCIDRUpdate keeps a ServiceCIDR's ranges, but lets a
// single-stack one gain a range of the other family.
func validateServiceCIDRUpdate(cidrs, old []string) field.ErrorList {
	if len(old) == 1 && len(cidrs) == 2 && cidrs[0] == old[0] {
		return nil
	}
	return immutable(nil, specPath.Child("cidrs"), cidrs, old)
}

func newIPAddressResource() *Resource {
	return plainResource(&Resource{
		Name: "ipaddresses", Singular: "ipaddress", Kind: "IPAddress", Group: GroupNetworking,
		ShortNames: []string{"ip"},
		New:        func() runtime.Object { return &networkingv1.IPAddress{} },
		NewList:    func() runtime.Object { return &networkingv1.IPAddressList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("ParentRef", "string", networkingv1.IPAddressSpec{}.SwaggerDoc()["parentRef"], false),
			ageColumn(),
		},
		Row: printable(func(ip *networkingv1.IPAddress, now time.Time) []interface{} {
			parent := none
			if r := ip.Spec.ParentRef; r != nil {
				parent = r.Resource
				if r.Group != "" {
					parent += "." + r.Group
				}
				parent += "/"
				if r.Namespace != "" {
					parent += r.Namespace + "/"
				}
				parent += r.Name
			}
			return []interface{}{ip.Name, parent, since(ip.CreationTimestamp.Time, now)}
		}),
	}, validateIPAddress, func(ip, old *networkingv1.IPAddress) field.ErrorList {
		return immutable(nil, specPath.Child("parentRef"), ip.Spec.ParentRef, old.Spec.ParentRef)
	})
}

// validateIPAddress checks an IPAddress as Kubernetes does: named by an
// address in canonical form, with a reference to the object it belongs
// to.
func validateIPAddress(ip *networkingv1.IPAddress) field.ErrorList {
	errs := validateMeta(&ip.ObjectMeta, false, validateIPAddressName)
	p := specPath.Child("parentRef")
	r := ip.Spec.ParentRef
	if r == nil {
		return append(errs, field.Required(p, ""))
	}
	if r.Group != "" {
		errs = append(errs, validateDNSSubdomain(r.Group, p.Child("group"))...)
	}
	if r.Resource == "" {
		errs = append(errs, field.Required(p.Child("resource"), ""))
	} else {
		errs = append(errs, messages(p.Child("resource"), r.Resource, path.ValidatePathSegmentName(r.Resource, false))...)
	}
	if r.Namespace != "" {
		errs = append(errs, validateDNSLabel(r.Namespace, p.Child("namespace"))...)
	}
	if r.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		errs = append(errs, messages(p.Child("name"), r.Name, path.ValidatePathSegmentName(r.Name, false))...)
	}
	return errs
}

// validateIPAddressName requires an IP address in canonical form, the
// form netip prints: no leading zeros, IPv6 compressed and in lower case.
func validateIPAddressName(name string, _ bool) []string {
	addr, err := netip.ParseAddr(name)
	switch {
	case err != nil:
		return []string{"must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"}
	case addr.Zone() != "":
		return []string{"must not have a zone"}
	case addr.Is4In6():
		return []string{"must not be an IPv4-mapped IPv6 address"}
	case addr.String() != name:
		return []string{"must be in canonical form (\"" + addr.String() + "\")"}
	}
	return nil
}
