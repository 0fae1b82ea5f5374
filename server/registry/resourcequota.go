package registry

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var resourceQuotaResource = &Resource{
	Name:       "resourcequotas",
	Singular:   "resourcequota",
	Kind:       "ResourceQuota",
	ShortNames: []string{"quota"},
	Namespaced: true,
	HasStatus:  true,

	New:     func() runtime.Object { return &corev1.ResourceQuota{} },
	NewList: func() runtime.Object { return &corev1.ResourceQuotaList{} },

	PrepareForCreate: mutate(func(q *corev1.ResourceQuota) {
		q.Generation = 1
		q.Status = corev1.ResourceQuotaStatus{}
	}),
	PrepareForUpdate: mutatePair(func(q, old *corev1.ResourceQuota) {
		q.Status = old.Status
		nextGeneration(&q.ObjectMeta, &old.ObjectMeta, q.Spec, old.Spec)
	}),
	PrepareForStatusUpdate: mutatePair(func(q, old *corev1.ResourceQuota) {
		q.Spec = old.Spec
		q.Generation = old.Generation
	}),

	ValidateCreate:       check(validateResourceQuota),
	ValidateUpdate:       checkPair(validateResourceQuotaUpdate),
	ValidateStatusUpdate: checkPair(validateResourceQuotaStatusUpdate),

	FieldSet: selectable(func(q *corev1.ResourceQuota) fields.Set { return metaFields(&q.ObjectMeta, nil) }),
	Columns: []metav1.TableColumnDefinition{
		nameColumn(), ageColumn(),
		column("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume.", false),
		column("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.", false),
	},
	Row: printable(resourceQuotaRow),
}

func init() { notScalable(resourceQuotaResource) }

// quotaScopes are the scopes a quota may have.
var quotaScopes = []corev1.ResourceQuotaScope{
	corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
	corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort,
	corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity,
	corev1.ResourceQuotaScopeVolumeAttributesClass,
}

// podComputeResources are what a quota scoped to pods other than
// BestEffort may limit, besides pods.
var podComputeResources = []corev1.ResourceName{
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceLimitsCPU,
	corev1.ResourceLimitsMemory, corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
}

func validateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	errs := validateMeta(&q.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	errs = append(errs, validateQuotaSpec(&q.Spec)...)
	errs = append(errs, validateQuotaList(q.Status.Hard, statusPath.Child("hard"))...)
	return append(errs, validateQuotaList(q.Status.Used, statusPath.Child("used"))...)
}

func validateResourceQuotaUpdate(q, old *corev1.ResourceQuota) field.ErrorList {
	errs := validateMetaUpdate(&q.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateQuotaSpec(&q.Spec)...)
	a, b := slices.Clone(q.Spec.Scopes), slices.Clone(old.Spec.Scopes)
	slices.Sort(a)
	slices.Sort(b)
	if !apiequality.Semantic.DeepEqual(slices.Compact(a), slices.Compact(b)) {
		errs = append(errs, field.Invalid(specPath.Child("scopes"), q.Spec.Scopes, apivalidation.FieldImmutableErrorMsg))
	}
	return errs
}

func validateResourceQuotaStatusUpdate(q, old *corev1.ResourceQuota) field.ErrorList {
	errs := validateMetaUpdate(&q.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateQuotaList(q.Status.Hard, statusPath.Child("hard"))...)
	return append(errs, validateQuotaList(q.Status.Used, statusPath.Child("used"))...)
}

func validateQuotaList(list corev1.ResourceList, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedResourceNames(list) {
		kp := p.Key(string(k))
		errs = append(errs, validateQuotaResourceName(k, kp)...)
		errs = append(errs, validateQuantityValue(k, list[k], kp)...)
	}
	return errs
}

// validateQuotaSpec checks hard limits and scopes as Kubernetes does:
// known scopes, each valid for every standard resource limited, no
// conflicting pair, and selector operators that fit their scope.
func validateQuotaSpec(spec *corev1.ResourceQuotaSpec) field.ErrorList {
	errs := validateQuotaList(spec.Hard, specPath.Child("hard"))
	scopesPath := specPath.Child("scopes")
	errs = append(errs, validateScopeSet(spec.Scopes, spec, scopesPath, spec.Scopes)...)
	if sel := spec.ScopeSelector; sel != nil {
		p := specPath.Child("scopeSelector", "matchExpressions")
		var names []corev1.ResourceQuotaScope
		for _, req := range sel.MatchExpressions {
			names = append(names, req.ScopeName)
			errs = append(errs, validateScopeRequirement(req, p)...)
		}
		errs = append(errs, validateScopeSet(names, spec, p, spec.Scopes)...)
	}
	return errs
}

func validateScopeSet(scopes []corev1.ResourceQuotaScope, spec *corev1.ResourceQuotaSpec, p *field.Path, shown interface{}) field.ErrorList {
	var errs field.ErrorList
	for _, sc := range scopes {
		if !slices.Contains(quotaScopes, sc) {
			errs = append(errs, field.Invalid(p, shown, "unsupported scope"))
		}
		for _, k := range sortedResourceNames(spec.Hard) {
			if quotaResources[k] && !scopeFits(sc, k) {
				errs = append(errs, field.Invalid(p, shown, "unsupported scope applied to resource"))
			}
		}
	}
	for _, pair := range [][2]corev1.ResourceQuotaScope{
		{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort},
		{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
	} {
		if slices.Contains(scopes, pair[0]) && slices.Contains(scopes, pair[1]) {
			errs = append(errs, field.Invalid(p, shown, "conflicting scopes"))
		}
	}
	return errs
}

// scopeFits reports whether a quota with scope sc may limit resource k.
func scopeFits(sc corev1.ResourceQuotaScope, k corev1.ResourceName) bool {
	switch sc {
	case corev1.ResourceQuotaScopeBestEffort:
		return k == corev1.ResourcePods
	case corev1.ResourceQuotaScopeVolumeAttributesClass:
		return k == corev1.ResourcePersistentVolumeClaims || k == corev1.ResourceRequestsStorage
	case corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeNotBestEffort,
		corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return k == corev1.ResourcePods || slices.Contains(podComputeResources, k)
	}
	return true
}

func validateScopeRequirement(req corev1.ScopedResourceSelectorRequirement, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch req.ScopeName {
	case corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopeTerminating,
		corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		if req.Operator != corev1.ScopeSelectorOpExists {
			errs = append(errs, field.Invalid(p.Child("operator"), req.Operator,
				"must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))
		}
	}
	switch req.Operator {
	case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
		if len(req.Values) == 0 {
			errs = append(errs, field.Required(p.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
		}
	case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
		if len(req.Values) != 0 {
			errs = append(errs, field.Invalid(p.Child("values"), req.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
		}
	default:
		errs = append(errs, field.Invalid(p.Child("operator"), req.Operator, "not a valid selector operator"))
	}
	return errs
}

// resourceQuotaRow shows used/hard for the requests and limits
// resources, as kubectl does.
func resourceQuotaRow(q *corev1.ResourceQuota, now time.Time) []interface{} {
	var req, lim []string
	for _, k := range sortedResourceNames(q.Status.Hard) {
		hard, used := q.Status.Hard[k], q.Status.Used[k]
		s := string(k) + ": " + used.String() + "/" + hard.String()
		if strings.HasPrefix(string(k), "limits.") {
			lim = append(lim, s)
		} else {
			req = append(req, s)
		}
	}
	return []interface{}{q.Name, since(q.CreationTimestamp.Time, now), strings.Join(req, ", "), strings.Join(lim, ", ")}
}
