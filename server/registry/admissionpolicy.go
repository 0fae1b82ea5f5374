package registry

import (
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/google/cel-go/cel"

	"github.com/minik-dev/minik/server/celexpr"
)

var validatingAdmissionPolicyResource = newValidatingAdmissionPolicyResource()

func newValidatingAdmissionPolicyResource() *Resource {
	r := &Resource{
		Name:      "validatingadmissionpolicies",
		Singular:  "validatingadmissionpolicy",
		Kind:      "ValidatingAdmissionPolicy",
		Group:     GroupAdmissionRegistration,
		HasStatus: true,

		New:     func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicy{} },
		NewList: func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyList{} },

		PrepareForCreate: mutate(func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Status = admissionregistrationv1.ValidatingAdmissionPolicyStatus{}
			p.Generation = 1
			defaultPolicy(p)
		}),
		PrepareForUpdate: mutatePair(func(p, old *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Status = old.Status
			defaultPolicy(p)
			nextGeneration(&p.ObjectMeta, &old.ObjectMeta, p.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(p, old *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec = old.Spec
		}),

		ValidateCreate: check(func(p *admissionregistrationv1.ValidatingAdmissionPolicy) field.ErrorList {
			errs := validateMeta(&p.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
			return append(errs, validatePolicySpec(&p.Spec)...)
		}),
		ValidateUpdate: checkPair(func(p, old *admissionregistrationv1.ValidatingAdmissionPolicy) field.ErrorList {
			errs := validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
			return append(errs, validatePolicySpec(&p.Spec)...)
		}),
		ValidateStatusUpdate: checkPair(func(p, old *admissionregistrationv1.ValidatingAdmissionPolicy) field.ErrorList {
			return validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
		}),

		FieldSet: selectable(func(p *admissionregistrationv1.ValidatingAdmissionPolicy) fields.Set {
			return metaFields(&p.ObjectMeta, nil)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Validations", "integer", "The number of validations of the policy.", false),
			column("ParamKind", "string", "The kind of the policy's parameters.", false),
			ageColumn(),
		},
		Row: printable(func(p *admissionregistrationv1.ValidatingAdmissionPolicy, now time.Time) []interface{} {
			pk := "<unset>"
			if p.Spec.ParamKind != nil {
				pk = p.Spec.ParamKind.APIVersion + "/" + p.Spec.ParamKind.Kind
			}
			return []interface{}{p.Name, int64(len(p.Spec.Validations)), pk, since(p.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

var validatingAdmissionPolicyBindingResource = newValidatingAdmissionPolicyBindingResource()

func newValidatingAdmissionPolicyBindingResource() *Resource {
	r := &Resource{
		Name:     "validatingadmissionpolicybindings",
		Singular: "validatingadmissionpolicybinding",
		Kind:     "ValidatingAdmissionPolicyBinding",
		Group:    GroupAdmissionRegistration,

		New:     func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{} },
		NewList: func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyBindingList{} },

		PrepareForCreate: mutate(func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			b.Generation = 1
			defaultBinding(b)
		}),
		PrepareForUpdate: mutatePair(func(b, old *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			defaultBinding(b)
			nextGeneration(&b.ObjectMeta, &old.ObjectMeta, b.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(b, old *admissionregistrationv1.ValidatingAdmissionPolicyBinding) { b.Spec = old.Spec }),

		ValidateCreate: check(func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) field.ErrorList {
			errs := validateMeta(&b.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
			return append(errs, validateBindingSpec(&b.Spec)...)
		}),
		ValidateUpdate: checkPair(func(b, old *admissionregistrationv1.ValidatingAdmissionPolicyBinding) field.ErrorList {
			errs := validateMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateBindingSpec(&b.Spec)...)
		}),
		ValidateStatusUpdate: checkPair(func(b, old *admissionregistrationv1.ValidatingAdmissionPolicyBinding) field.ErrorList {
			return validateMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)
		}),

		FieldSet: selectable(func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) fields.Set {
			return metaFields(&b.ObjectMeta, nil)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("PolicyName", "string", "The policy the binding binds.", false),
			column("ParamRef", "string", "The parameters of the binding.", false),
			ageColumn(),
		},
		Row: printable(func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding, now time.Time) []interface{} {
			return []interface{}{b.Name, b.Spec.PolicyName, paramRefText(b.Spec.ParamRef), since(b.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// paramRefText shows a binding's paramRef in its table row.
func paramRefText(p *admissionregistrationv1.ParamRef) string {
	switch {
	case p == nil:
		return "<unset>"
	case p.Selector != nil:
		return "*" + metav1.FormatLabelSelector(p.Selector)
	case p.Namespace != "":
		return p.Namespace + "/" + p.Name
	}
	return p.Name
}

func defaultPolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		f := admissionregistrationv1.Fail
		p.Spec.FailurePolicy = &f
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

func defaultBinding(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	defaultMatchResources(b.Spec.MatchResources)
}

func defaultMatchResources(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	if m.MatchPolicy == nil {
		p := admissionregistrationv1.Equivalent
		m.MatchPolicy = &p
	}
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	for _, rs := range [][]admissionregistrationv1.NamedRuleWithOperations{m.ResourceRules, m.ExcludeResourceRules} {
		for i := range rs {
			if rs[i].Scope == nil {
				s := admissionregistrationv1.AllScopes
				rs[i].Scope = &s
			}
		}
	}
}

// statusReasons are the reasons a validation may give a denial.
var statusReasons = []metav1.StatusReason{
	metav1.StatusReasonUnauthorized, metav1.StatusReasonForbidden, metav1.StatusReasonInvalid, metav1.StatusReasonRequestEntityTooLarge,
}

func validatePolicySpec(s *admissionregistrationv1.ValidatingAdmissionPolicySpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateParamKind(s.ParamKind, specPath.Child("paramKind"))...)
	if s.MatchConstraints == nil {
		errs = append(errs, field.Required(specPath.Child("matchConstraints"), ""))
	} else {
		errs = append(errs, validateMatchResources(s.MatchConstraints, true, specPath.Child("matchConstraints"))...)
	}
	if len(s.Validations) == 0 && len(s.AuditAnnotations) == 0 {
		errs = append(errs, field.Required(specPath.Child("validations"), "validations or auditAnnotations must contain at least one item"))
	}
	if s.FailurePolicy != nil {
		errs = append(errs, validateEnum(*s.FailurePolicy, specPath.Child("failurePolicy"), admissionregistrationv1.Ignore, admissionregistrationv1.Fail)...)
	}
	errs = append(errs, validateMatchConditions(s.MatchConditions, celexpr.PolicyScope, specPath.Child("matchConditions"))...)
	errs = append(errs, validateVariables(s.Variables, specPath.Child("variables"))...)
	for i, v := range s.Validations {
		p := specPath.Child("validations").Index(i)
		errs = append(errs, validateExpression(v.Expression, celexpr.PolicyScope, cel.BoolType, p.Child("expression"))...)
		if strings.ContainsAny(v.Message, "\r\n") {
			errs = append(errs, field.Invalid(p.Child("message"), v.Message, "message must not contain line breaks"))
		}
		if v.MessageExpression != "" {
			errs = append(errs, validateExpression(v.MessageExpression, celexpr.PolicyScope, cel.StringType, p.Child("messageExpression"))...)
		}
		if v.Reason != nil {
			errs = append(errs, validateEnum(*v.Reason, p.Child("reason"), statusReasons...)...)
		}
	}
	keys := sets.New[string]()
	for i, a := range s.AuditAnnotations {
		p := specPath.Child("auditAnnotations").Index(i)
		if a.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else if keys.Has(a.Key) {
			errs = append(errs, field.Duplicate(p.Child("key"), a.Key))
		}
		keys.Insert(a.Key)
		errs = append(errs, validateExpression(a.ValueExpression, celexpr.PolicyScope, nil, p.Child("valueExpression"))...)
	}
	return errs
}

// validateParamKind requires a kind and a group/version of a policy's
// paramKind, if it has one.
func validateParamKind(pk *admissionregistrationv1.ParamKind, p *field.Path) field.ErrorList {
	if pk == nil {
		return nil
	}
	var errs field.ErrorList
	if pk.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	}
	if gv, err := schema.ParseGroupVersion(pk.APIVersion); err != nil || gv.Version == "" {
		errs = append(errs, field.Invalid(p.Child("apiVersion"), pk.APIVersion, "must be a valid group/version"))
	}
	return errs
}

// validateVariables requires each variable a CEL identifier as name and
// an expression that compiles.
func validateVariables(vs []admissionregistrationv1.Variable, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, v := range vs {
		ip := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case !isCELIdentifier(v.Name):
			errs = append(errs, field.Invalid(ip.Child("name"), v.Name, "name is not a valid CEL identifier"))
		case names.Has(v.Name):
			errs = append(errs, field.Duplicate(ip.Child("name"), v.Name))
		}
		names.Insert(v.Name)
		errs = append(errs, validateExpression(v.Expression, celexpr.PolicyScope, nil, ip.Child("expression"))...)
	}
	return errs
}

func isCELIdentifier(s string) bool {
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// validateMatchResources checks a policy's matchConstraints (policy: rules
// required) or a binding's matchResources.
func validateMatchResources(m *admissionregistrationv1.MatchResources, policy bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.MatchPolicy != nil {
		errs = append(errs, validateEnum(*m.MatchPolicy, p.Child("matchPolicy"), admissionregistrationv1.Exact, admissionregistrationv1.Equivalent)...)
	}
	opts := metavalidation.LabelSelectorValidationOptions{}
	if m.NamespaceSelector != nil {
		errs = append(errs, metavalidation.ValidateLabelSelector(m.NamespaceSelector, opts, p.Child("namespaceSelector"))...)
	}
	if m.ObjectSelector != nil {
		errs = append(errs, metavalidation.ValidateLabelSelector(m.ObjectSelector, opts, p.Child("objectSelector"))...)
	}
	if policy && len(m.ResourceRules) == 0 {
		errs = append(errs, field.Required(p.Child("resourceRules"), ""))
	}
	lists := []struct {
		name  string
		rules []admissionregistrationv1.NamedRuleWithOperations
	}{{"resourceRules", m.ResourceRules}, {"excludeResourceRules", m.ExcludeResourceRules}}
	for _, l := range lists {
		rs := l.rules
		for i := range rs {
			ip := p.Child(l.name).Index(i)
			errs = append(errs, validateRuleWithOperations(&rs[i].RuleWithOperations, ip)...)
			for j, n := range rs[i].ResourceNames {
				errs = append(errs, validateDNSSubdomain(n, ip.Child("resourceNames").Index(j))...)
			}
		}
	}
	return errs
}

var validationActions = []admissionregistrationv1.ValidationAction{
	admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Audit,
}

func validateBindingSpec(s *admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec) field.ErrorList {
	var errs field.ErrorList
	if s.PolicyName == "" {
		errs = append(errs, field.Required(specPath.Child("policyName"), ""))
	} else {
		errs = append(errs, validateDNSSubdomain(s.PolicyName, specPath.Child("policyName"))...)
	}
	ap := specPath.Child("validationActions")
	if len(s.ValidationActions) == 0 {
		errs = append(errs, field.Required(ap, "at least one validation action is required"))
	}
	seen := sets.New[admissionregistrationv1.ValidationAction]()
	for i, a := range s.ValidationActions {
		errs = append(errs, validateEnum(a, ap.Index(i), validationActions...)...)
		if seen.Has(a) {
			errs = append(errs, field.Duplicate(ap.Index(i), a))
		}
		seen.Insert(a)
	}
	if seen.Has(admissionregistrationv1.Deny) && seen.Has(admissionregistrationv1.Warn) {
		errs = append(errs, field.Invalid(ap, s.ValidationActions, "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"))
	}
	errs = append(errs, validateParamRef(s.ParamRef, specPath.Child("paramRef"))...)
	if s.MatchResources != nil {
		errs = append(errs, validateMatchResources(s.MatchResources, false, specPath.Child("matchResources"))...)
	}
	return errs
}

// validateParamRef checks a binding's paramRef: a name or a selector,
// and what to do when no parameter is found.
func validateParamRef(r *admissionregistrationv1.ParamRef, p *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	switch {
	case r.Name != "" && r.Selector != nil:
		errs = append(errs, field.Forbidden(p.Child("name"), "name and selector are mutually exclusive"))
	case r.Name == "" && r.Selector == nil:
		errs = append(errs, field.Required(p, "one of name or selector must be specified"))
	case r.Name != "":
		errs = append(errs, validateDNSSubdomain(r.Name, p.Child("name"))...)
	default:
		errs = append(errs, metavalidation.ValidateLabelSelector(r.Selector, metavalidation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	}
	if r.Namespace != "" {
		errs = append(errs, messages(p.Child("namespace"), r.Namespace, validation.IsDNS1123Label(r.Namespace))...)
	}
	if r.ParameterNotFoundAction == nil {
		errs = append(errs, field.Required(p.Child("parameterNotFoundAction"), ""))
	} else {
		errs = append(errs, validateEnum(*r.ParameterNotFoundAction, p.Child("parameterNotFoundAction"),
			admissionregistrationv1.AllowAction, admissionregistrationv1.DenyAction)...)
	}
	return errs
}
