package registry

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupScheduling is the API group of PriorityClass.
const GroupScheduling = "scheduling.k8s.io"

const (
	// HighestUserDefinablePriority is the highest value a PriorityClass
	// other than the system ones may have.
	HighestUserDefinablePriority = int32(1000000000)
	// SystemPriorityClassPrefix starts the names reserved for the system
	// classes.
	SystemPriorityClassPrefix = "system-"
)

// SystemPriorityClasses are the classes every cluster has, as Kubernetes
// creates them.
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	return []*schedulingv1.PriorityClass{
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "system-node-critical"},
			Value:       HighestUserDefinablePriority*2 + 1000,
			Description: "Used for system critical pods that must not be moved from their current node.",
		},
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "system-cluster-critical"},
			Value:       HighestUserDefinablePriority * 2,
			Description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
		},
	}
}

// isSystemPriorityClass reports whether c is one of SystemPriorityClasses
// as they are defined.
func isSystemPriorityClass(c *schedulingv1.PriorityClass) bool {
	for _, sys := range SystemPriorityClasses() {
		if sys.Name == c.Name {
			return sys.Value == c.Value
		}
	}
	return false
}

var priorityClassResource = newPriorityClassResource()

func newPriorityClassResource() *Resource {
	r := &Resource{
		Name:       "priorityclasses",
		Singular:   "priorityclass",
		Kind:       "PriorityClass",
		Group:      GroupScheduling,
		ShortNames: []string{"pc"},

		New:     func() runtime.Object { return &schedulingv1.PriorityClass{} },
		NewList: func() runtime.Object { return &schedulingv1.PriorityClassList{} },

		PrepareForCreate: mutate(defaultPriorityClass),
		PrepareForUpdate: mutatePair(func(c, old *schedulingv1.PriorityClass) {
			defaultPriorityClass(c)
			c.Generation = old.Generation
		}),
		PrepareForStatusUpdate: mutatePair(func(c, old *schedulingv1.PriorityClass) { *c = *old }),

		ValidateCreate:       check(validatePriorityClass),
		ValidateUpdate:       checkPair(validatePriorityClassUpdate),
		ValidateStatusUpdate: checkPair(validatePriorityClassUpdate),

		FieldSet: selectable(func(c *schedulingv1.PriorityClass) fields.Set { return metaFields(&c.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Value", "integer", schedulingv1.PriorityClass{}.SwaggerDoc()["value"], false),
			column("Global-Default", "boolean", schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"], false),
			ageColumn(),
			column("PreemptionPolicy", "string", schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"], false),
		},
		Row: printable(func(c *schedulingv1.PriorityClass, now time.Time) []interface{} {
			policy := ""
			if c.PreemptionPolicy != nil {
				policy = string(*c.PreemptionPolicy)
			}
			return []interface{}{c.Name, int64(c.Value), c.GlobalDefault, since(c.CreationTimestamp.Time, now), policy}
		}),
	}
	notScalable(r)
	return r
}

func defaultPriorityClass(c *schedulingv1.PriorityClass) {
	if c.PreemptionPolicy == nil {
		c.PreemptionPolicy = ptrTo(corev1.PreemptLowerPriority)
	}
}

// validatePriorityClass checks a PriorityClass as Kubernetes does: the
// "system-" names and values above HighestUserDefinablePriority belong
// to the system classes, and the preemption policy is a known one.
func validatePriorityClass(c *schedulingv1.PriorityClass) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	system := isSystemPriorityClass(c)
	if strings.HasPrefix(c.Name, SystemPriorityClassPrefix) && !system {
		errs = append(errs, field.Forbidden(field.NewPath("metadata", "name"),
			"priority class names with '"+SystemPriorityClassPrefix+"' prefix are reserved for system use only"))
	}
	if c.Value > HighestUserDefinablePriority && !system {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "maximum allowed value of a user defined priority is 1000000000"))
	}
	if c.PreemptionPolicy != nil {
		errs = append(errs, validateEnum(*c.PreemptionPolicy, field.NewPath("preemptionPolicy"), corev1.PreemptLowerPriority, corev1.PreemptNever)...)
	}
	return errs
}

func validatePriorityClassUpdate(c, old *schedulingv1.PriorityClass) field.ErrorList {
	errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePriorityClass(c)...)
	if c.Value != old.Value {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	if old.PreemptionPolicy != nil && (c.PreemptionPolicy == nil || *c.PreemptionPolicy != *old.PreemptionPolicy) {
		errs = append(errs, field.Invalid(field.NewPath("preemptionPolicy"), c.PreemptionPolicy, apivalidation.FieldImmutableErrorMsg))
	}
	return errs
}
