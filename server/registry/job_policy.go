package registry

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Upstream's bounds on a Job's policies.
const (
	maxPodFailurePolicyRules = 20
	maxOnExitCodesValues     = 255
	maxOnPodConditions       = 20
	maxSuccessPolicyRules    = 20
)

// validatePodFailurePolicy checks the rules of spec.podFailurePolicy:
// each has a known action and exactly one of onExitCodes and
// onPodConditions.
func validatePodFailurePolicy(s *batchv1.JobSpec, path *field.Path) field.ErrorList {
	rules := s.PodFailurePolicy.Rules
	rulesPath := path.Child("rules")
	if len(rules) > maxPodFailurePolicyRules {
		return field.ErrorList{field.TooMany(rulesPath, len(rules), maxPodFailurePolicyRules)}
	}
	containers := map[string]bool{}
	for _, c := range s.Template.Spec.InitContainers {
		containers[c.Name] = true
	}
	for _, c := range s.Template.Spec.Containers {
		containers[c.Name] = true
	}
	var errs field.ErrorList
	for i := range rules {
		errs = append(errs, validatePodFailurePolicyRule(s, &rules[i], rulesPath.Index(i), containers)...)
	}
	return errs
}

func validatePodFailurePolicyRule(s *batchv1.JobSpec, r *batchv1.PodFailurePolicyRule, path *field.Path, containers map[string]bool) field.ErrorList {
	actions := []batchv1.PodFailurePolicyAction{batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionFailIndex,
		batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyActionCount}
	errs := validateEnum(r.Action, path.Child("action"), actions...)
	if r.Action == batchv1.PodFailurePolicyActionFailIndex && s.BackoffLimitPerIndex == nil {
		errs = append(errs, field.Forbidden(path.Child("action"), "requires the backoffLimitPerIndex to be set"))
	}
	switch {
	case r.OnExitCodes != nil && r.OnPodConditions != nil:
		errs = append(errs, field.Invalid(path, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
	case r.OnExitCodes != nil:
		errs = append(errs, validateOnExitCodes(r.OnExitCodes, path.Child("onExitCodes"), containers)...)
	case r.OnPodConditions != nil:
		errs = append(errs, validateOnPodConditions(r.OnPodConditions, path.Child("onPodConditions"))...)
	default:
		errs = append(errs, field.Invalid(path, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
	}
	return errs
}

// validateOnExitCodes requires sorted, unique values, none 0 for In.
func validateOnExitCodes(r *batchv1.PodFailurePolicyOnExitCodesRequirement, path *field.Path, containers map[string]bool) field.ErrorList {
	var errs field.ErrorList
	if r.ContainerName != nil && !containers[*r.ContainerName] {
		errs = append(errs, field.Invalid(path.Child("containerName"), *r.ContainerName, "must be one of the container or initContainer names in the pod template"))
	}
	errs = append(errs, validateEnum(r.Operator, path.Child("operator"), batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn)...)
	vp := path.Child("values")
	switch {
	case len(r.Values) == 0:
		errs = append(errs, field.Invalid(vp, r.Values, "at least one value is required"))
	case len(r.Values) > maxOnExitCodesValues:
		errs = append(errs, field.TooMany(vp, len(r.Values), maxOnExitCodesValues))
	}
	for i, v := range r.Values {
		switch {
		case i > 0 && v == r.Values[i-1]:
			errs = append(errs, field.Duplicate(vp.Index(i), v))
		case i > 0 && v < r.Values[i-1]:
			errs = append(errs, field.Invalid(vp.Index(i), v, "must be ordered"))
		case v == 0 && r.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn:
			errs = append(errs, field.Invalid(vp.Index(i), v, "must not be 0 for the In operator"))
		}
	}
	return errs
}

func validateOnPodConditions(ps []batchv1.PodFailurePolicyOnPodConditionsPattern, path *field.Path) field.ErrorList {
	if len(ps) > maxOnPodConditions {
		return field.ErrorList{field.TooMany(path, len(ps), maxOnPodConditions)}
	}
	var errs field.ErrorList
	for i, p := range ps {
		ip := path.Index(i)
		errs = append(errs, messages(ip.Child("type"), p.Type, validation.IsQualifiedName(string(p.Type)))...)
		errs = append(errs, validateEnum(p.Status, ip.Child("status"), corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown)...)
	}
	return errs
}

// validateSuccessPolicy checks spec.successPolicy: only for Indexed Jobs,
// one to 20 rules, each with succeededIndexes or succeededCount.
func validateSuccessPolicy(s *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		errs = append(errs, field.Invalid(path, s.SuccessPolicy, "requires indexed completion mode"))
	}
	rules := s.SuccessPolicy.Rules
	rp := path.Child("rules")
	switch {
	case len(rules) == 0:
		return append(errs, field.Required(rp, "at least one rules must be specified when the successPolicy is specified"))
	case len(rules) > maxSuccessPolicyRules:
		return append(errs, field.TooMany(rp, len(rules), maxSuccessPolicyRules))
	}
	completions := int32(0)
	if s.Completions != nil {
		completions = *s.Completions
	}
	for i, r := range rules {
		ip := rp.Index(i)
		if r.SucceededIndexes == nil && r.SucceededCount == nil {
			errs = append(errs, field.Required(ip, "at least one of succeededCount or succeededIndexes must be specified"))
		}
		n := int32(-1)
		if r.SucceededIndexes != nil {
			set, err := ParseIndexes(*r.SucceededIndexes, completions)
			if err != nil {
				errs = append(errs, field.Invalid(ip.Child("succeededIndexes"), *r.SucceededIndexes, err.Error()))
			}
			n = int32(set.Len())
		}
		if c := r.SucceededCount; c != nil {
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*c), ip.Child("succeededCount"))...)
			if *c > completions {
				errs = append(errs, field.Invalid(ip.Child("succeededCount"), *c, fmt.Sprintf("must be less than or equal to %d (the number of specified completions)", completions)))
			}
			if n >= 0 && *c > n {
				errs = append(errs, field.Invalid(ip.Child("succeededCount"), *c, fmt.Sprintf("must be less than or equal to %d (the number of indexes in the specified succeededIndexes field)", n)))
			}
		}
	}
	return errs
}

// Indexes is a set of completion indexes, as Job status and success
// policies write them: "1,3-5,7". The ranges are sorted and disjoint.
type Indexes []IndexRange

// IndexRange is the closed range First..Last.
type IndexRange struct{ First, Last int32 }

// ParseIndexes parses the interval list s, each index below completions
// (no bound when completions is negative). The result is sorted and
// merged.
func ParseIndexes(s string, completions int32) (Indexes, error) {
	if s == "" {
		return nil, nil
	}
	var out Indexes
	for _, part := range strings.Split(s, ",") {
		first, last, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseInt(first, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("cannot convert string to integer for index: %q", first)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(last, 10, 32); err != nil {
				return nil, fmt.Errorf("cannot convert string to integer for index: %q", last)
			}
		}
		switch {
		case a < 0:
			return nil, fmt.Errorf("index must be non-negative: %d", a)
		case completions >= 0 && b >= int64(completions):
			return nil, fmt.Errorf("too large index: %d", b)
		case b < a:
			return nil, fmt.Errorf("non-increasing order, previous: %d, current: %d", a, b)
		case len(out) > 0 && int32(a) <= out[len(out)-1].Last:
			return nil, fmt.Errorf("overlapping intervals, previous: %d, current: %d", out[len(out)-1].Last, a)
		}
		out = out.with(int32(a), int32(b))
	}
	return out, nil
}

// with adds First..Last, which lies after every range of ix.
func (ix Indexes) with(first, last int32) Indexes {
	if n := len(ix); n > 0 && ix[n-1].Last+1 == first {
		ix[n-1].Last = last
		return ix
	}
	return append(ix, IndexRange{first, last})
}

// IndexesOf returns the set of the given indexes, in any order and with
// repeats.
func IndexesOf(idx []int32) Indexes {
	sorted := slices.Clone(idx)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var out Indexes
	for _, i := range sorted {
		out = out.with(i, i)
	}
	return out
}

// Len is the number of indexes in ix.
func (ix Indexes) Len() int {
	n := 0
	for _, r := range ix {
		n += int(r.Last-r.First) + 1
	}
	return n
}

// Has reports whether i is in ix.
func (ix Indexes) Has(i int32) bool {
	for _, r := range ix {
		if i >= r.First && i <= r.Last {
			return true
		}
	}
	return false
}

// String formats ix as upstream writes the status fields: "1,3-5,7,8",
// a range of two indexes written as both.
func (ix Indexes) String() string {
	parts := make([]string, len(ix))
	for i, r := range ix {
		switch r.Last - r.First {
		case 0:
			parts[i] = strconv.Itoa(int(r.First))
		case 1:
			parts[i] = fmt.Sprintf("%d,%d", r.First, r.Last)
		default:
			parts[i] = fmt.Sprintf("%d-%d", r.First, r.Last)
		}
	}
	return strings.Join(parts, ",")
}
