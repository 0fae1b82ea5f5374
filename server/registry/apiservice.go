package registry

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// GroupAPIRegistration is the API group of APIService.
const GroupAPIRegistration = "apiregistration.k8s.io"

// An APIService says which server answers one group-version: the API
// server itself (no service, "Local") or a Service it proxies to.

var apiServiceResource = newAPIServiceResource()

func newAPIServiceResource() *Resource {
	r := &Resource{
		Name:      "apiservices",
		Singular:  "apiservice",
		Kind:      "APIService",
		Group:     GroupAPIRegistration,
		HasStatus: true,

		New:     func() runtime.Object { return &apiregistrationv1.APIService{} },
		NewList: func() runtime.Object { return &apiregistrationv1.APIServiceList{} },

		PrepareForCreate: mutate(func(a *apiregistrationv1.APIService) {
			a.Status = apiregistrationv1.APIServiceStatus{}
		}),
		PrepareForUpdate: mutatePair(func(a, old *apiregistrationv1.APIService) {
			a.Status = old.Status
		}),
		PrepareForStatusUpdate: mutatePair(func(a, old *apiregistrationv1.APIService) {
			a.Spec = old.Spec
		}),

		ValidateCreate: check(func(a *apiregistrationv1.APIService) field.ErrorList {
			return append(validateMeta(&a.ObjectMeta, false, apiServiceName), validateAPIService(a)...)
		}),
		ValidateUpdate: checkPair(func(a, old *apiregistrationv1.APIService) field.ErrorList {
			return append(validateMetaUpdate(&a.ObjectMeta, &old.ObjectMeta), validateAPIService(a)...)
		}),
		ValidateStatusUpdate: checkPair(func(a, old *apiregistrationv1.APIService) field.ErrorList {
			return append(validateMetaUpdate(&a.ObjectMeta, &old.ObjectMeta), validateAPIServiceStatus(&a.Status)...)
		}),

		FieldSet: selectable(func(a *apiregistrationv1.APIService) fields.Set {
			return metaFields(&a.ObjectMeta, nil)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Service", "string", "The service answering the group-version, Local for the API server itself.", false),
			column("Available", "string", "Whether the group-version is available.", false),
			ageColumn(),
		},
		Row: printable(func(a *apiregistrationv1.APIService, now time.Time) []interface{} {
			svc := "Local"
			if s := a.Spec.Service; s != nil {
				svc = s.Namespace + "/" + s.Name
			}
			avail := "Unknown"
			for _, c := range a.Status.Conditions {
				if c.Type == apiregistrationv1.Available {
					avail = string(c.Status)
					if c.Status != apiregistrationv1.ConditionTrue && c.Reason != "" {
						avail += " (" + c.Reason + ")"
					}
				}
			}
			return []interface{}{a.Name, svc, avail, since(a.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// apiServiceName checks a name is usable as a path segment and has the
// form VERSION.GROUP; validateAPIService checks it matches the spec.
func apiServiceName(name string, _ bool) []string {
	if name == "." || name == ".." || strings.ContainsAny(name, "/%") {
		return []string{"may not be '.' or '..' and may not contain '/' or '%'"}
	}
	if !strings.Contains(name, ".") {
		return []string{"must be in the form: version.group"}
	}
	return nil
}

// validateAPIService checks the spec as Kubernetes does.
func validateAPIService(a *apiregistrationv1.APIService) field.ErrorList {
	var errs field.ErrorList
	s := &a.Spec
	if want := s.Version + "." + s.Group; a.Name != want {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), a.Name, fmt.Sprintf("must be spec.version+\".\"+spec.group: %q", want)))
	}
	if s.Group == "" && s.Version != "v1" {
		errs = append(errs, field.Required(specPath.Child("group"), "only v1 may have an empty group"))
	}
	if s.Group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(s.Group) {
			errs = append(errs, field.Invalid(specPath.Child("group"), s.Group, msg))
		}
	}
	if s.Version == "" {
		errs = append(errs, field.Required(specPath.Child("version"), ""))
	} else {
		for _, msg := range validation.IsDNS1035Label(s.Version) {
			errs = append(errs, field.Invalid(specPath.Child("version"), s.Version, msg))
		}
	}
	if s.GroupPriorityMinimum <= 0 || s.GroupPriorityMinimum > 20000 {
		errs = append(errs, field.Invalid(specPath.Child("groupPriorityMinimum"), s.GroupPriorityMinimum, "must be positive and less than 20000"))
	}
	if s.VersionPriority <= 0 || s.VersionPriority > 1000 {
		errs = append(errs, field.Invalid(specPath.Child("versionPriority"), s.VersionPriority, "must be positive and less than 1000"))
	}
	if s.Service == nil {
		if len(s.CABundle) != 0 {
			errs = append(errs, field.Invalid(specPath.Child("caBundle"), fmt.Sprintf("%d bytes", len(s.CABundle)), "local APIServices may not have a caBundle"))
		}
		if s.InsecureSkipTLSVerify {
			errs = append(errs, field.Invalid(specPath.Child("insecureSkipTLSVerify"), true, "local APIServices may not have insecureSkipTLSVerify"))
		}
		return errs
	}
	svc := specPath.Child("service")
	if s.Service.Namespace == "" {
		errs = append(errs, field.Required(svc.Child("namespace"), ""))
	}
	if s.Service.Name == "" {
		errs = append(errs, field.Required(svc.Child("name"), ""))
	}
	if p := s.Service.Port; p != nil {
		for _, msg := range validation.IsValidPortNum(int(*p)) {
			errs = append(errs, field.Invalid(svc.Child("port"), *p, msg))
		}
	}
	if s.InsecureSkipTLSVerify && len(s.CABundle) > 0 {
		errs = append(errs, field.Invalid(specPath.Child("insecureSkipTLSVerify"), true, "may not be true if caBundle is present"))
	}
	return errs
}

// validateAPIServiceStatus checks each condition has a known status.
func validateAPIServiceStatus(st *apiregistrationv1.APIServiceStatus) field.ErrorList {
	var errs field.ErrorList
	for i, c := range st.Conditions {
		p := field.NewPath("status", "conditions").Index(i)
		switch c.Status {
		case apiregistrationv1.ConditionTrue, apiregistrationv1.ConditionFalse, apiregistrationv1.ConditionUnknown:
		default:
			errs = append(errs, field.NotSupported(p.Child("status"), c.Status, []string{"True", "False", "Unknown"}))
		}
		if c.Type == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		}
	}
	return errs
}
