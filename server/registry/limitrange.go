package registry

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var limitRangeResource = &Resource{
	Name:       "limitranges",
	Singular:   "limitrange",
	Kind:       "LimitRange",
	ShortNames: []string{"limits"},
	Namespaced: true,

	New:     func() runtime.Object { return &corev1.LimitRange{} },
	NewList: func() runtime.Object { return &corev1.LimitRangeList{} },

	PrepareForCreate: mutate(func(l *corev1.LimitRange) {
		l.Generation = 1
		defaultLimitRange(l)
	}),
	PrepareForUpdate: mutatePair(func(l, old *corev1.LimitRange) {
		defaultLimitRange(l)
		nextGeneration(&l.ObjectMeta, &old.ObjectMeta, l.Spec, old.Spec)
	}),
	PrepareForStatusUpdate: mutatePair(func(l, old *corev1.LimitRange) {}),

	ValidateCreate: check(func(l *corev1.LimitRange) field.ErrorList {
		return append(validateMeta(&l.ObjectMeta, true, apivalidation.NameIsDNSSubdomain), validateLimitRangeSpec(&l.Spec)...)
	}),
	ValidateUpdate: checkPair(func(l, old *corev1.LimitRange) field.ErrorList {
		return append(validateMetaUpdate(&l.ObjectMeta, &old.ObjectMeta), validateLimitRangeSpec(&l.Spec)...)
	}),
	ValidateStatusUpdate: checkPair(func(l, old *corev1.LimitRange) field.ErrorList { return nil }),

	FieldSet: selectable(func(l *corev1.LimitRange) fields.Set { return metaFields(&l.ObjectMeta, nil) }),
	Columns:  []metav1.TableColumnDefinition{nameColumn(), column("Created At", "date", "Time the limit range was created", false)},
	Row: printable(func(l *corev1.LimitRange, _ time.Time) []interface{} {
		return []interface{}{l.Name, l.CreationTimestamp.UTC().Format(time.RFC3339)}
	}),
}

func init() { notScalable(limitRangeResource) }

// defaultLimitRange fills the defaults of Container limits as Kubernetes
// does: a missing default limit is the max, a missing default request the
// default limit, else the min.
func defaultLimitRange(l *corev1.LimitRange) {
	for i := range l.Spec.Limits {
		lim := &l.Spec.Limits[i]
		if lim.Type != corev1.LimitTypeContainer {
			continue
		}
		if lim.Default == nil {
			lim.Default = corev1.ResourceList{}
		}
		if lim.DefaultRequest == nil {
			lim.DefaultRequest = corev1.ResourceList{}
		}
		fillMissing(lim.Default, lim.Max)
		fillMissing(lim.DefaultRequest, lim.Default)
		fillMissing(lim.DefaultRequest, lim.Min)
	}
}

// fillMissing copies into dst each quantity of src dst lacks.
func fillMissing(dst, src corev1.ResourceList) {
	for k, v := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = v.DeepCopy()
		}
	}
}

// limitTypes are the standard LimitRange types.
var limitTypes = map[corev1.LimitType]bool{
	corev1.LimitTypePod: true, corev1.LimitTypeContainer: true, corev1.LimitTypePersistentVolumeClaim: true,
}

// validateLimitRangeSpec checks each limit as Kubernetes does: a standard
// or qualified type used once, resource names that fit the type, and for
// every resource min ≤ defaultRequest ≤ default ≤ max and a
// maxLimitRequestRatio of at least 1 that max/min allows.
func validateLimitRangeSpec(spec *corev1.LimitRangeSpec) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.LimitType]bool{}
	for i := range spec.Limits {
		lim := &spec.Limits[i]
		p := specPath.Child("limits").Index(i)
		errs = append(errs, validateLimitType(lim.Type, p.Child("type"))...)
		if seen[lim.Type] {
			errs = append(errs, field.Duplicate(p.Child("type"), lim.Type))
		}
		seen[lim.Type] = true
		errs = append(errs, validateLimitItem(lim, p)...)
	}
	return errs
}

func validateLimitType(t corev1.LimitType, p *field.Path) field.ErrorList {
	errs := validateResourceNameSyntax(string(t), p)
	if len(errs) == 0 && !strings.Contains(string(t), "/") && !limitTypes[t] {
		errs = append(errs, field.Invalid(p, t, "must be a standard limit type or fully qualified"))
	}
	return errs
}

// limitLists names the lists of a LimitRangeItem, for iteration.
func limitLists(lim *corev1.LimitRangeItem) []struct {
	name string
	list corev1.ResourceList
} {
	return []struct {
		name string
		list corev1.ResourceList
	}{{"max", lim.Max}, {"min", lim.Min}, {"default", lim.Default}, {"defaultRequest", lim.DefaultRequest}, {"maxLimitRequestRatio", lim.MaxLimitRequestRatio}}
}

func validateLimitItem(lim *corev1.LimitRangeItem, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	keys := map[corev1.ResourceName]bool{}
	for _, l := range limitLists(lim) {
		if lim.Type == corev1.LimitTypePod && (l.name == "default" || l.name == "defaultRequest") {
			if len(l.list) > 0 {
				errs = append(errs, field.Forbidden(p.Child(l.name), "may not be specified when `type` is 'Pod'"))
			}
			continue
		}
		for _, k := range sortedResourceNames(l.list) {
			kp := p.Child(l.name).Key(string(k))
			if lim.Type == corev1.LimitTypePod || lim.Type == corev1.LimitTypeContainer {
				errs = append(errs, validateContainerResourceName(k, kp)...)
			} else {
				errs = append(errs, validateResourceName(k, kp)...)
			}
			keys[k] = true
		}
	}
	if lim.Type == corev1.LimitTypePersistentVolumeClaim {
		_, hasMin := lim.Min[corev1.ResourceStorage]
		_, hasMax := lim.Max[corev1.ResourceStorage]
		if !hasMin && !hasMax {
			errs = append(errs, field.Required(p.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
		}
	}
	for _, k := range sortedResourceNames(boolList(keys)) {
		errs = append(errs, validateLimitOrder(lim, k, p)...)
	}
	return errs
}

// boolList turns a set of names into a ResourceList, for sorting.
func boolList(set map[corev1.ResourceName]bool) corev1.ResourceList {
	l := corev1.ResourceList{}
	for k := range set {
		l[k] = resource.Quantity{}
	}
	return l
}

// validateLimitOrder checks min ≤ defaultRequest ≤ default ≤ max and the
// ratio for resource k.
func validateLimitOrder(lim *corev1.LimitRangeItem, k corev1.ResourceName, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	min, hasMin := lim.Min[k]
	max, hasMax := lim.Max[k]
	def, hasDef := lim.Default[k]
	req, hasReq := lim.DefaultRequest[k]
	ratio, hasRatio := lim.MaxLimitRequestRatio[k]
	if lim.Type == corev1.LimitTypePod {
		hasDef, hasReq = false, false
	}
	bad := func(list string, v resource.Quantity, format string, a ...interface{}) {
		errs = append(errs, field.Invalid(p.Child(list).Key(string(k)), v, fmt.Sprintf(format, a...)))
	}
	if hasMin && hasMax && min.Cmp(max) > 0 {
		bad("min", min, "min value %s is greater than max value %s", min.String(), max.String())
	}
	if hasReq && hasMin && min.Cmp(req) > 0 {
		bad("defaultRequest", req, "min value %s is greater than default request value %s", min.String(), req.String())
	}
	if hasReq && hasMax && req.Cmp(max) > 0 {
		bad("defaultRequest", req, "default request value %s is greater than max value %s", req.String(), max.String())
	}
	if hasReq && hasDef && req.Cmp(def) > 0 {
		bad("defaultRequest", req, "default request value %s is greater than default limit value %s", req.String(), def.String())
	}
	if hasDef && hasMin && min.Cmp(def) > 0 {
		bad("default", min, "min value %s is greater than default value %s", min.String(), def.String())
	}
	if hasDef && hasMax && def.Cmp(max) > 0 {
		bad("default", max, "default value %s is greater than max value %s", def.String(), max.String())
	}
	if hasRatio && ratio.Cmp(*resource.NewQuantity(1, resource.DecimalSI)) < 0 {
		bad("maxLimitRequestRatio", ratio, "ratio %s is less than 1", ratio.String())
	}
	if hasRatio && hasMin && hasMax && min.Sign() > 0 {
		if limit := float64(max.MilliValue()) / float64(min.MilliValue()); float64(ratio.MilliValue())/1000 > limit {
			bad("maxLimitRequestRatio", ratio, "ratio %s is greater than max/min = %f", ratio.String(), limit)
		}
	}
	if hasDef && hasReq && !overcommitAllowed(k) && def.Cmp(req) != 0 {
		bad("defaultRequest", req, "default value %s must equal to defaultRequest value %s in %s", def.String(), req.String(), k)
	}
	return errs
}

// overcommitAllowed reports whether a resource's limit may exceed its
// request: true for the native ones but hugepages.
func overcommitAllowed(k corev1.ResourceName) bool {
	name := string(k)
	native := !strings.Contains(name, "/") || strings.Contains(name, corev1.ResourceDefaultNamespacePrefix)
	return native && !isHugePages(k)
}
