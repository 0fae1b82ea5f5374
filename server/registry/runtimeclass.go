package registry

import (
	"time"

	nodev1 "k8s.io/api/node/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupNode is the API group of RuntimeClass.
const GroupNode = "node.k8s.io"

var runtimeClassResource = newRuntimeClassResource()

func newRuntimeClassResource() *Resource {
	r := &Resource{
		Name:     "runtimeclasses",
		Singular: "runtimeclass",
		Kind:     "RuntimeClass",
		Group:    GroupNode,

		New:     func() runtime.Object { return &nodev1.RuntimeClass{} },
		NewList: func() runtime.Object { return &nodev1.RuntimeClassList{} },

		PrepareForCreate:       mutate(func(*nodev1.RuntimeClass) {}),
		PrepareForUpdate:       mutatePair(func(c, old *nodev1.RuntimeClass) { c.Generation = old.Generation }),
		PrepareForStatusUpdate: mutatePair(func(c, old *nodev1.RuntimeClass) { *c = *old }),

		ValidateCreate:       check(validateRuntimeClass),
		ValidateUpdate:       checkPair(validateRuntimeClassUpdate),
		ValidateStatusUpdate: checkPair(validateRuntimeClassUpdate),

		FieldSet: selectable(func(c *nodev1.RuntimeClass) fields.Set { return metaFields(&c.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Handler", "string", nodev1.RuntimeClass{}.SwaggerDoc()["handler"], false),
			ageColumn(),
		},
		Row: printable(func(c *nodev1.RuntimeClass, now time.Time) []interface{} {
			return []interface{}{c.Name, c.Handler, since(c.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// validateRuntimeClass checks a RuntimeClass as Kubernetes does: a
// DNS-label handler, non-negative overhead, and valid scheduling
// constraints.
func validateRuntimeClass(c *nodev1.RuntimeClass) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	handler := field.NewPath("handler")
	if c.Handler == "" {
		errs = append(errs, field.Required(handler, ""))
	} else {
		errs = append(errs, validateDNSLabel(c.Handler, handler)...)
	}
	if c.Overhead != nil {
		errs = append(errs, validateResourceList(c.Overhead.PodFixed, field.NewPath("overhead", "podFixed"))...)
	}
	if s := c.Scheduling; s != nil {
		p := field.NewPath("scheduling")
		errs = append(errs, v1validation.ValidateLabels(s.NodeSelector, p.Child("nodeSelector"))...)
		errs = append(errs, validateTolerations(s.Tolerations, p.Child("tolerations"))...)
	}
	return errs
}

func validateRuntimeClassUpdate(c, old *nodev1.RuntimeClass) field.ErrorList {
	errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateRuntimeClass(c)...)
	if c.Handler != old.Handler {
		errs = append(errs, field.Invalid(field.NewPath("handler"), c.Handler, apivalidation.FieldImmutableErrorMsg))
	}
	return errs
}
