package registry

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Paths shared by every kind.
var (
	metadataPath = field.NewPath("metadata")
	specPath     = field.NewPath("spec")
	statusPath   = field.NewPath("status")
)

// protocols are the port protocols Kubernetes supports.
var protocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

// validateMeta checks an object's metadata on create. nameFn is the
// kind's rule for metadata.name.
func validateMeta(m *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	return apivalidation.ValidateObjectMeta(m, namespaced, nameFn, metadataPath)
}

// validateMetaUpdate checks metadata changes on update. resourceVersion
// is not checked: the API server handles preconditions and clears it
// before validation.
func validateMetaUpdate(m, old *metav1.ObjectMeta) field.ErrorList {
	rv := metadataPath.Child("resourceVersion").String()
	var errs field.ErrorList
	for _, err := range apivalidation.ValidateObjectMetaUpdate(m, old, metadataPath) {
		if err.Field != rv {
			errs = append(errs, err)
		}
	}
	return errs
}

// nextGeneration sets m's generation for an update: old's, plus one when
// the spec changed.
func nextGeneration(m, old *metav1.ObjectMeta, spec, oldSpec interface{}) {
	m.Generation = old.Generation
	if !apiequality.Semantic.DeepEqual(spec, oldSpec) {
		m.Generation++
	}
}

// validateEnum requires v to be one of allowed.
func validateEnum[T ~string](v T, path *field.Path, allowed ...T) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	if !slices.Contains(allowed, v) {
		return field.ErrorList{field.NotSupported(path, v, allowed)}
	}
	return nil
}

// validateOptionalEnum is validateEnum for a field that may be empty.
func validateOptionalEnum[T ~string](v T, path *field.Path, allowed ...T) field.ErrorList {
	if v == "" {
		return nil
	}
	return validateEnum(v, path, allowed...)
}

// messages turns the messages of a k8s.io/apimachinery/pkg/util/validation
// check into Invalid errors for value at path.
func messages(path *field.Path, value interface{}, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

func validateDNSLabel(v string, path *field.Path) field.ErrorList {
	return messages(path, v, validation.IsDNS1123Label(v))
}

func validateDNSSubdomain(v string, path *field.Path) field.ErrorList {
	return messages(path, v, validation.IsDNS1123Subdomain(v))
}

// validatePort checks a port number that must be set.
func validatePort(port int32, path *field.Path) field.ErrorList {
	if port == 0 {
		return field.ErrorList{field.Required(path, "")}
	}
	return messages(path, port, validation.IsValidPortNum(int(port)))
}

// validatePortName checks an IANA_SVC_NAME (at most 15 characters).
func validatePortName(name string, path *field.Path) field.ErrorList {
	return messages(path, name, validation.IsValidPortName(name))
}

// validateIP checks an IP address that must be set.
func validateIP(ip string, path *field.Path) field.ErrorList {
	if ip == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return validation.IsValidIP(path, ip)
}

// validateResourceList checks resource names and that no quantity is
// negative.
func validateResourceList(list corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedResourceNames(list) {
		p := path.Key(string(name))
		errs = append(errs, messages(p, name, validation.IsQualifiedName(string(name)))...)
		if q := list[name]; q.Sign() < 0 {
			errs = append(errs, field.Invalid(p, q.String(), apivalidation.IsNegativeErrorMsg))
		}
	}
	return errs
}

// sortedResourceNames gives list's names in order, so errors come out in
// a stable order.
func sortedResourceNames(list corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(list))
	for name := range list {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
