package registry

import (
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/google/cel-go/cel"

	"github.com/minik-dev/minik/server/celexpr"
)

var mutatingAdmissionPolicyResource = newMutatingAdmissionPolicyResource()

func newMutatingAdmissionPolicyResource() *Resource {
	r := &Resource{
		Name:     "mutatingadmissionpolicies",
		Singular: "mutatingadmissionpolicy",
		Kind:     "MutatingAdmissionPolicy",
		Group:    GroupAdmissionRegistration,

		New:     func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicy{} },
		NewList: func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicyList{} },

		PrepareForCreate: mutate(func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Generation = 1
			defaultMutatingPolicy(p)
		}),
		PrepareForUpdate: mutatePair(func(p, old *admissionregistrationv1.MutatingAdmissionPolicy) {
			defaultMutatingPolicy(p)
			nextGeneration(&p.ObjectMeta, &old.ObjectMeta, p.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(p, old *admissionregistrationv1.MutatingAdmissionPolicy) { p.Spec = old.Spec }),

		ValidateCreate: check(func(p *admissionregistrationv1.MutatingAdmissionPolicy) field.ErrorList {
			errs := validateMeta(&p.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
			return append(errs, validateMutatingPolicySpec(&p.Spec)...)
		}),
		ValidateUpdate: checkPair(func(p, old *admissionregistrationv1.MutatingAdmissionPolicy) field.ErrorList {
			errs := validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateMutatingPolicySpec(&p.Spec)...)
		}),
		ValidateStatusUpdate: checkPair(func(p, old *admissionregistrationv1.MutatingAdmissionPolicy) field.ErrorList {
			return validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
		}),

		FieldSet: selectable(func(p *admissionregistrationv1.MutatingAdmissionPolicy) fields.Set {
			return metaFields(&p.ObjectMeta, nil)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Mutations", "integer", "The number of mutations of the policy.", false),
			column("ParamKind", "string", "The kind of the policy's parameters.", false),
			ageColumn(),
		},
		Row: printable(func(p *admissionregistrationv1.MutatingAdmissionPolicy, now time.Time) []interface{} {
			pk := "<unset>"
			if p.Spec.ParamKind != nil {
				pk = p.Spec.ParamKind.APIVersion + "/" + p.Spec.ParamKind.Kind
			}
			return []interface{}{p.Name, int64(len(p.Spec.Mutations)), pk, since(p.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

var mutatingAdmissionPolicyBindingResource = newMutatingAdmissionPolicyBindingResource()

func newMutatingAdmissionPolicyBindingResource() *Resource {
	r := &Resource{
		Name:     "mutatingadmissionpolicybindings",
		Singular: "mutatingadmissionpolicybinding",
		Kind:     "MutatingAdmissionPolicyBinding",
		Group:    GroupAdmissionRegistration,

		New:     func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicyBinding{} },
		NewList: func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicyBindingList{} },

		PrepareForCreate: mutate(func(b *admissionregistrationv1.MutatingAdmissionPolicyBinding) {
			b.Generation = 1
			defaultMatchResources(b.Spec.MatchResources)
		}),
		PrepareForUpdate: mutatePair(func(b, old *admissionregistrationv1.MutatingAdmissionPolicyBinding) {
			defaultMatchResources(b.Spec.MatchResources)
			nextGeneration(&b.ObjectMeta, &old.ObjectMeta, b.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(b, old *admissionregistrationv1.MutatingAdmissionPolicyBinding) { b.Spec = old.Spec }),

		ValidateCreate: check(func(b *admissionregistrationv1.MutatingAdmissionPolicyBinding) field.ErrorList {
			errs := validateMeta(&b.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
			return append(errs, validateMutatingBindingSpec(&b.Spec)...)
		}),
		ValidateUpdate: checkPair(func(b, old *admissionregistrationv1.MutatingAdmissionPolicyBinding) field.ErrorList {
			errs := validateMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateMutatingBindingSpec(&b.Spec)...)
		}),
		ValidateStatusUpdate: checkPair(func(b, old *admissionregistrationv1.MutatingAdmissionPolicyBinding) field.ErrorList {
			return validateMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)
		}),

		FieldSet: selectable(func(b *admissionregistrationv1.MutatingAdmissionPolicyBinding) fields.Set {
			return metaFields(&b.ObjectMeta, nil)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("PolicyName", "string", "The policy the binding binds.", false),
			column("ParamRef", "string", "The parameters of the binding.", false),
			ageColumn(),
		},
		Row: printable(func(b *admissionregistrationv1.MutatingAdmissionPolicyBinding, now time.Time) []interface{} {
			return []interface{}{b.Name, b.Spec.PolicyName, paramRefText(b.Spec.ParamRef), since(b.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

func defaultMutatingPolicy(p *admissionregistrationv1.MutatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		f := admissionregistrationv1.Fail
		p.Spec.FailurePolicy = &f
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

// mutatingOperations are the operations a mutating policy may match: a
// delete has no object to mutate.
var mutatingOperations = []admissionregistrationv1.OperationType{
	admissionregistrationv1.OperationAll, admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Connect,
}

var patchTypes = []admissionregistrationv1.PatchType{
	admissionregistrationv1.PatchTypeApplyConfiguration, admissionregistrationv1.PatchTypeJSONPatch,
}

func validateMutatingPolicySpec(s *admissionregistrationv1.MutatingAdmissionPolicySpec) field.ErrorList {
	errs := validateParamKind(s.ParamKind, specPath.Child("paramKind"))
	if s.MatchConstraints == nil {
		errs = append(errs, field.Required(specPath.Child("matchConstraints"), ""))
	} else {
		errs = append(errs, validateMatchResources(s.MatchConstraints, true, specPath.Child("matchConstraints"))...)
		errs = append(errs, validateMutatingOperations(s.MatchConstraints, specPath.Child("matchConstraints"))...)
	}
	if s.FailurePolicy != nil {
		errs = append(errs, validateEnum(*s.FailurePolicy, specPath.Child("failurePolicy"), admissionregistrationv1.Ignore, admissionregistrationv1.Fail)...)
	}
	if s.ReinvocationPolicy == "" {
		errs = append(errs, field.Required(specPath.Child("reinvocationPolicy"), ""))
	} else {
		errs = append(errs, validateEnum(s.ReinvocationPolicy, specPath.Child("reinvocationPolicy"),
			admissionregistrationv1.NeverReinvocationPolicy, admissionregistrationv1.IfNeededReinvocationPolicy)...)
	}
	errs = append(errs, validateMatchConditions(s.MatchConditions, celexpr.PolicyScope, specPath.Child("matchConditions"))...)
	errs = append(errs, validateVariables(s.Variables, specPath.Child("variables"))...)
	if len(s.Mutations) == 0 {
		errs = append(errs, field.Required(specPath.Child("mutations"), "mutations must contain at least one item"))
	}
	for i := range s.Mutations {
		errs = append(errs, validateMutation(&s.Mutations[i], specPath.Child("mutations").Index(i))...)
	}
	return errs
}

// validateMutatingOperations refuses rules of m that match deletes.
func validateMutatingOperations(m *admissionregistrationv1.MatchResources, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range m.ResourceRules {
		for j, op := range r.Operations {
			errs = append(errs, validateEnum(op, p.Child("resourceRules").Index(i).Child("operations").Index(j), mutatingOperations...)...)
		}
	}
	return errs
}

// validateMutation requires the one patch its patchType names, with an
// expression that compiles to that patch.
func validateMutation(m *admissionregistrationv1.Mutation, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch m.PatchType {
	case "":
		errs = append(errs, field.Required(p.Child("patchType"), ""))
	case admissionregistrationv1.PatchTypeApplyConfiguration:
		if m.ApplyConfiguration == nil {
			errs = append(errs, field.Required(p.Child("applyConfiguration"), "must be specified when patchType is ApplyConfiguration"))
		} else {
			errs = append(errs, validateMutationExpression(m.ApplyConfiguration.Expression, celexpr.ApplyConfigurationType, p.Child("applyConfiguration", "expression"))...)
		}
		if m.JSONPatch != nil {
			errs = append(errs, field.Invalid(p.Child("jsonPatch"), "{jsonPatch}", "must not be specified when patchType is ApplyConfiguration"))
		}
	case admissionregistrationv1.PatchTypeJSONPatch:
		if m.JSONPatch == nil {
			errs = append(errs, field.Required(p.Child("jsonPatch"), "must be specified when patchType is JSONPatch"))
		} else {
			errs = append(errs, validateMutationExpression(m.JSONPatch.Expression, celexpr.JSONPatchType, p.Child("jsonPatch", "expression"))...)
		}
		if m.ApplyConfiguration != nil {
			errs = append(errs, field.Invalid(p.Child("applyConfiguration"), "{applyConfiguration}", "must not be specified when patchType is JSONPatch"))
		}
	default:
		errs = append(errs, validateEnum(m.PatchType, p.Child("patchType"), patchTypes...)...)
	}
	return errs
}

func validateMutationExpression(expr string, want *cel.Type, p *field.Path) field.ErrorList {
	if strings.TrimSpace(expr) == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if _, err := celexpr.CompileMutation(expr, want); err != nil {
		return field.ErrorList{field.Invalid(p, expr, err.Error())}
	}
	return nil
}

func validateMutatingBindingSpec(s *admissionregistrationv1.MutatingAdmissionPolicyBindingSpec) field.ErrorList {
	var errs field.ErrorList
	if s.PolicyName == "" {
		errs = append(errs, field.Required(specPath.Child("policyName"), ""))
	} else {
		errs = append(errs, validateDNSSubdomain(s.PolicyName, specPath.Child("policyName"))...)
	}
	errs = append(errs, validateParamRef(s.ParamRef, specPath.Child("paramRef"))...)
	if m := s.MatchResources; m != nil {
		errs = append(errs, validateMatchResources(m, false, specPath.Child("matchResources"))...)
		errs = append(errs, validateMutatingOperations(m, specPath.Child("matchResources"))...)
	}
	return errs
}
