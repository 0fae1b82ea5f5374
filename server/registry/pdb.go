package registry

import (
	"time"

	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupPolicy is the API group of PodDisruptionBudget and Eviction.
const GroupPolicy = "policy"

var pdbResource = &Resource{
	Name:       "poddisruptionbudgets",
	Singular:   "poddisruptionbudget",
	Kind:       "PodDisruptionBudget",
	Group:      GroupPolicy,
	ShortNames: []string{"pdb"},
	Namespaced: true,
	HasStatus:  true,

	New:     func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
	NewList: func() runtime.Object { return &policyv1.PodDisruptionBudgetList{} },

	PrepareForCreate:       mutate(preparePDBForCreate),
	PrepareForUpdate:       mutatePair(preparePDBForUpdate),
	PrepareForStatusUpdate: mutatePair(preparePDBForStatusUpdate),

	ValidateCreate:       check(validatePDB),
	ValidateUpdate:       checkPair(validatePDBUpdate),
	ValidateStatusUpdate: checkPair(validatePDBStatusUpdate),

	FieldSet: selectable(func(p *policyv1.PodDisruptionBudget) fields.Set { return metaFields(&p.ObjectMeta, nil) }),
	Columns:  pdbColumns,
	Row:      printable(pdbRow),
}

func init() { notScalable(pdbResource) }

func preparePDBForCreate(p *policyv1.PodDisruptionBudget) {
	p.Generation = 1
	p.Status = policyv1.PodDisruptionBudgetStatus{}
}

func preparePDBForUpdate(p, old *policyv1.PodDisruptionBudget) {
	p.Status = old.Status
	nextGeneration(&p.ObjectMeta, &old.ObjectMeta, p.Spec, old.Spec)
}

func preparePDBForStatusUpdate(p, old *policyv1.PodDisruptionBudget) {
	p.Spec = old.Spec
	p.Generation = old.Generation
}

func validatePDB(p *policyv1.PodDisruptionBudget) field.ErrorList {
	errs := validateMeta(&p.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validatePDBSpec(&p.Spec)...)
}

func validatePDBUpdate(p, old *policyv1.PodDisruptionBudget) field.ErrorList {
	errs := validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	return append(errs, validatePDBSpec(&p.Spec)...)
}

// validatePDBSpec checks the spec as Kubernetes does: at most one of
// minAvailable and maxUnavailable, each a non-negative integer or a
// percentage up to 100%, and a valid selector.
func validatePDBSpec(s *policyv1.PodDisruptionBudgetSpec) field.ErrorList {
	var errs field.ErrorList
	if s.MinAvailable != nil && s.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(specPath, s, "minAvailable and maxUnavailable cannot be both set"))
	}
	if s.MinAvailable != nil {
		errs = append(errs, validateIntOrPercent(*s.MinAvailable, specPath.Child("minAvailable"))...)
	}
	if s.MaxUnavailable != nil {
		errs = append(errs, validateIntOrPercent(*s.MaxUnavailable, specPath.Child("maxUnavailable"))...)
	}
	errs = append(errs, v1validation.ValidateLabelSelector(s.Selector, v1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
	if s.UnhealthyPodEvictionPolicy != nil {
		errs = append(errs, validateEnum(*s.UnhealthyPodEvictionPolicy, specPath.Child("unhealthyPodEvictionPolicy"),
			policyv1.IfHealthyBudget, policyv1.AlwaysAllow)...)
	}
	return errs
}

func validateIntOrPercent(v intstr.IntOrString, path *field.Path) field.ErrorList {
	if v.Type == intstr.Int {
		return apivalidation.ValidateNonnegativeField(int64(v.IntValue()), path)
	}
	pct, err := intstr.GetScaledValueFromIntOrPercent(&v, 100, false)
	if err != nil {
		return field.ErrorList{field.Invalid(path, v.StrVal, "must be an integer or percentage (e.g '5%')")}
	}
	if pct < 0 || pct > 100 {
		return field.ErrorList{field.Invalid(path, v.StrVal, "must not be greater than 100%")}
	}
	return nil
}

func validatePDBStatusUpdate(p, old *policyv1.PodDisruptionBudget) field.ErrorList {
	errs := validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	st := &p.Status
	for _, c := range []struct {
		name  string
		value int64
	}{
		{"disruptionsAllowed", int64(st.DisruptionsAllowed)},
		{"currentHealthy", int64(st.CurrentHealthy)},
		{"desiredHealthy", int64(st.DesiredHealthy)},
		{"expectedPods", int64(st.ExpectedPods)},
		{"observedGeneration", st.ObservedGeneration},
	} {
		errs = append(errs, apivalidation.ValidateNonnegativeField(c.value, statusPath.Child(c.name))...)
	}
	return errs
}

var pdbColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Min Available", "string", policyv1.PodDisruptionBudgetSpec{}.SwaggerDoc()["minAvailable"], false),
	column("Max Unavailable", "string", policyv1.PodDisruptionBudgetSpec{}.SwaggerDoc()["maxUnavailable"], false),
	column("Allowed Disruptions", "integer", policyv1.PodDisruptionBudgetStatus{}.SwaggerDoc()["disruptionsAllowed"], false),
	ageColumn(),
}

func pdbRow(p *policyv1.PodDisruptionBudget, now time.Time) []interface{} {
	minAvail, maxUnavail := "N/A", "N/A"
	if p.Spec.MinAvailable != nil {
		minAvail = p.Spec.MinAvailable.String()
	}
	if p.Spec.MaxUnavailable != nil {
		maxUnavail = p.Spec.MaxUnavailable.String()
	}
	return []interface{}{p.Name, minAvail, maxUnavail, int64(p.Status.DisruptionsAllowed), since(p.CreationTimestamp.Time, now)}
}
