package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/google/cel-go/cel"

	"github.com/minik-dev/minik/server/celexpr"
)

// ParamGetter reads the parameter objects of policies.
type ParamGetter interface {
	// Params returns the objects of kind gvk in namespace (ignored for a
	// cluster-scoped kind): the one named name, or with name "" those
	// selector selects. None found is an empty result, not an error; a
	// kind the server does not serve is an error.
	Params(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string, selector labels.Selector) ([]runtime.Object, error)
}

// boundPolicy is a policy with one of its bindings, compiled.
type boundPolicy struct {
	policy, binding string
	failurePolicy   admissionregistrationv1.FailurePolicyType
	actions         []admissionregistrationv1.ValidationAction
	paramSource
	match        *resourceMatch
	bindingMatch *resourceMatch // nil: what the policy matches
	conditions   []condition
	variables    []variable
	validations  []validation
	// broken is why the policy cannot be evaluated; its failurePolicy
	// then decides every request it matches.
	broken error
}

// paramSource is where a bound policy finds its parameters: objects of
// paramKind (nil: none) that paramRef names or selects.
type paramSource struct {
	paramKind     *schema.GroupVersionKind
	paramRef      *admissionregistrationv1.ParamRef
	paramSelector labels.Selector
}

// compile sets the paramKind of a policy and the paramRef of its binding.
func (ps *paramSource) compile(pk *admissionregistrationv1.ParamKind, ref *admissionregistrationv1.ParamRef) error {
	ps.paramRef = ref
	if pk == nil {
		return nil
	}
	gv, err := schema.ParseGroupVersion(pk.APIVersion)
	if err != nil {
		return fmt.Errorf("paramKind: %w", err)
	}
	gvk := gv.WithKind(pk.Kind)
	ps.paramKind = &gvk
	if ref != nil && ref.Selector != nil {
		if ps.paramSelector, err = metav1.LabelSelectorAsSelector(ref.Selector); err != nil {
			return fmt.Errorf("paramRef.selector: %w", err)
		}
	}
	return nil
}

type variable struct {
	name string
	prg  *celexpr.Program
}

func compileVariables(vs []admissionregistrationv1.Variable) ([]variable, error) {
	out := make([]variable, 0, len(vs))
	for _, v := range vs {
		prg, err := celexpr.Compile(v.Expression, celexpr.PolicyScope, nil)
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", v.Name, err)
		}
		out = append(out, variable{v.Name, prg})
	}
	return out, nil
}

type validation struct {
	prg        *celexpr.Program
	message    string
	messageExp *celexpr.Program
	reason     metav1.StatusReason
}

// resourceMatch is a compiled MatchResources.
type resourceMatch struct {
	rules, exclude []admissionregistrationv1.NamedRuleWithOperations
	selectors      selectors
}

func compileMatch(m *admissionregistrationv1.MatchResources) (*resourceMatch, error) {
	if m == nil {
		return nil, errors.New("no matchConstraints")
	}
	sel, err := compileSelectors(m.NamespaceSelector, m.ObjectSelector)
	if err != nil {
		return nil, err
	}
	return &resourceMatch{rules: m.ResourceRules, exclude: m.ExcludeResourceRules, selectors: sel}, nil
}

// matches reports whether a is among the resources of m; emptyAll makes
// empty resourceRules match every resource (a binding's).
func (m *resourceMatch) matches(ctx context.Context, a *Attributes, ns NamespaceGetter, emptyAll bool) (bool, error) {
	if namedRulesMatch(m.exclude, a) {
		return false, nil
	}
	if !(emptyAll && len(m.rules) == 0) && !namedRulesMatch(m.rules, a) {
		return false, nil
	}
	return m.selectors.matches(ctx, a, ns)
}

func namedRulesMatch(rs []admissionregistrationv1.NamedRuleWithOperations, a *Attributes) bool {
	for i := range rs {
		if ruleMatches(&rs[i].RuleWithOperations, a) && (len(rs[i].ResourceNames) == 0 || slices.Contains(rs[i].ResourceNames, a.Name)) {
			return true
		}
	}
	return false
}

// compilePolicies pairs each binding with its policy (bindings of a
// missing policy do nothing, as in Kubernetes) and compiles them.
func compilePolicies(ps []*admissionregistrationv1.ValidatingAdmissionPolicy, bs []*admissionregistrationv1.ValidatingAdmissionPolicyBinding) []*boundPolicy {
	byName := map[string]*admissionregistrationv1.ValidatingAdmissionPolicy{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	var out []*boundPolicy
	for _, b := range bs {
		if p, ok := byName[b.Spec.PolicyName]; ok {
			out = append(out, compilePolicy(p, b))
		}
	}
	return out
}

func compilePolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) *boundPolicy {
	bp := &boundPolicy{policy: p.Name, binding: b.Name, failurePolicy: admissionregistrationv1.Fail,
		actions: b.Spec.ValidationActions}
	if p.Spec.FailurePolicy != nil {
		bp.failurePolicy = *p.Spec.FailurePolicy
	}
	bp.broken = bp.compile(p, b)
	return bp
}

func (bp *boundPolicy) compile(p *admissionregistrationv1.ValidatingAdmissionPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) error {
	var err error
	if bp.match, err = compileMatch(p.Spec.MatchConstraints); err != nil {
		return err
	}
	if b.Spec.MatchResources != nil {
		if bp.bindingMatch, err = compileMatch(b.Spec.MatchResources); err != nil {
			return err
		}
	}
	if err := bp.paramSource.compile(p.Spec.ParamKind, b.Spec.ParamRef); err != nil {
		return err
	}
	if bp.paramKind != nil && bp.paramRef == nil {
		return errors.New("the policy has a paramKind and its binding no paramRef")
	}
	if bp.conditions, err = compileConditions(p.Spec.MatchConditions, celexpr.PolicyScope); err != nil {
		return err
	}
	if bp.variables, err = compileVariables(p.Spec.Variables); err != nil {
		return err
	}
	for i, v := range p.Spec.Validations {
		prg, err := celexpr.Compile(v.Expression, celexpr.PolicyScope, cel.BoolType)
		if err != nil {
			return fmt.Errorf("validations[%d]: %w", i, err)
		}
		val := validation{prg: prg, message: v.Message, reason: metav1.StatusReasonInvalid}
		if v.Reason != nil {
			val.reason = *v.Reason
		}
		if v.MessageExpression != "" {
			if val.messageExp, err = celexpr.Compile(v.MessageExpression, celexpr.PolicyScope, cel.StringType); err != nil {
				return fmt.Errorf("validations[%d].messageExpression: %w", i, err)
			}
		}
		bp.validations = append(bp.validations, val)
	}
	return nil
}

// validatePolicies evaluates every bound policy matching a.
func (c *Chain) validatePolicies(ctx context.Context, bps []*boundPolicy, a *Attributes, base func() (map[string]any, error)) ([]string, error) {
	var warnings []string
	for _, bp := range bps {
		warn, err := c.evaluate(ctx, bp, a, base)
		warnings = append(warnings, warn...)
		if err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}

// evaluate decides a by one bound policy.
func (c *Chain) evaluate(ctx context.Context, bp *boundPolicy, a *Attributes, base func() (map[string]any, error)) ([]string, error) {
	if bp.broken != nil {
		if bp.match == nil {
			return bp.failed(bp.broken)
		}
		if ok, _ := bp.match.matches(ctx, a, c.cfg.Namespaces, false); !ok {
			return nil, nil
		}
		return bp.failed(bp.broken)
	}
	ok, err := c.bindingMatches(ctx, bp.match, bp.bindingMatch, a)
	if err != nil {
		return bp.failed(err)
	}
	if !ok {
		return nil, nil
	}
	params, err := c.params(ctx, &bp.paramSource, a)
	if err != nil {
		return bp.failed(err)
	}
	if params == nil {
		// parameterNotFoundAction Allow, or no params of a selector.
		return nil, nil
	}
	vars, err := base()
	if err != nil {
		return bp.failed(err)
	}
	var warnings []string
	for _, p := range params {
		warn, err := c.evaluateWith(ctx, bp, a, vars, p)
		warnings = append(warnings, warn...)
		if err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}

// noParams stands for "no parameters" in the list of parameter objects a
// policy is evaluated with once each.
var noParams = []map[string]any{nil}

// bindingMatches reports whether a is among what a policy matches and
// its binding (if it has matchResources) too.
func (c *Chain) bindingMatches(ctx context.Context, policy, binding *resourceMatch, a *Attributes) (bool, error) {
	ok, err := policy.matches(ctx, a, c.cfg.Namespaces, false)
	if err == nil && ok && binding != nil {
		ok, err = binding.matches(ctx, a, c.cfg.Namespaces, true)
	}
	return ok, err
}

// params returns the parameter objects a bound policy is evaluated with:
// noParams without a paramKind or a paramRef, nil to skip the policy.
func (c *Chain) params(ctx context.Context, ps *paramSource, a *Attributes) ([]map[string]any, error) {
	if ps.paramKind == nil || ps.paramRef == nil {
		return noParams, nil
	}
	if c.cfg.Params == nil {
		return nil, errors.New("no parameter source")
	}
	ref := ps.paramRef
	ns := ref.Namespace
	if ns == "" {
		ns = a.Namespace
	}
	sel := ps.paramSelector
	if ref.Name == "" && sel == nil {
		sel = labels.Everything()
	}
	objs, err := c.cfg.Params.Params(ctx, *ps.paramKind, ns, ref.Name, sel)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		if ref.ParameterNotFoundAction != nil && *ref.ParameterNotFoundAction == admissionregistrationv1.DenyAction {
			return nil, fmt.Errorf("no params found for policy binding with `Deny` parameterNotFoundAction")
		}
		return nil, nil
	}
	out := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		m, err := toMap(o, *ps.paramKind)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// evaluateWith runs bp's conditions, variables and validations with one
// parameter object.
func (c *Chain) evaluateWith(ctx context.Context, bp *boundPolicy, a *Attributes, base, params map[string]any) ([]string, error) {
	vars := c.policyVars(ctx, a, base, params)
	ok, err := conditionsMatch(ctx, bp.conditions, vars)
	if err != nil {
		return bp.failed(err)
	}
	if !ok {
		return nil, nil
	}
	if err := evalVariables(ctx, bp.variables, vars); err != nil {
		return bp.failed(err)
	}
	for _, val := range bp.validations {
		ok, err := val.prg.Bool(ctx, vars)
		if err != nil {
			return bp.failed(fmt.Errorf("expression '%s' resulted in error: %w", val.prg, err))
		}
		if ok {
			continue
		}
		if warn, err := bp.violated(val, val.text(ctx, vars)); warn != nil || err != nil {
			return warn, err
		}
	}
	return nil, nil
}

// policyVars are the variables of a policy's expressions: base (object,
// oldObject, request), params and namespaceObject.
func (c *Chain) policyVars(ctx context.Context, a *Attributes, base, params map[string]any) map[string]any {
	vars := make(map[string]any, len(base)+3)
	for k, v := range base {
		vars[k] = v
	}
	vars[celexpr.Params] = params
	vars[celexpr.NamespaceObject] = nil
	if a.Namespaced && a.Namespace != "" && c.cfg.Namespaces != nil {
		if ns, err := c.cfg.Namespaces.Namespace(ctx, a.Namespace); err == nil {
			m, _ := toMap(ns, schema.GroupVersionKind{Version: "v1", Kind: "Namespace"})
			vars[celexpr.NamespaceObject] = m
		}
	}
	return vars
}

// evalVariables evaluates a policy's variables in order, each seeing
// those before it, into vars' variables.
func evalVariables(ctx context.Context, vs []variable, vars map[string]any) error {
	out := map[string]any{}
	vars[celexpr.Variables] = out
	for _, v := range vs {
		val, err := v.prg.Eval(ctx, vars)
		if err != nil {
			return fmt.Errorf("variable %q: %w", v.name, err)
		}
		out[v.name] = val
	}
	return nil
}

// text is the message of a failed validation: its messageExpression's,
// its message, or the expression.
func (v validation) text(ctx context.Context, vars map[string]any) string {
	if v.messageExp != nil {
		if s, err := v.messageExp.Text(ctx, vars); err == nil && s != "" {
			return s
		}
	}
	if v.message != "" {
		return v.message
	}
	return fmt.Sprintf("failed expression: %s", v.prg)
}

// violated applies the binding's validationActions to a failed validation.
func (bp *boundPolicy) violated(v validation, msg string) ([]string, error) {
	var warnings []string
	for _, act := range bp.actions {
		switch act {
		case admissionregistrationv1.Warn:
			warnings = append(warnings, fmt.Sprintf("Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': %s", bp.policy, bp.binding, msg))
		case admissionregistrationv1.Deny:
			return warnings, policyDenial(bp, v.reason, msg)
		}
	}
	return warnings, nil
}

// failed applies bp's failurePolicy to an error of its evaluation.
func (bp *boundPolicy) failed(err error) ([]string, error) {
	if bp.failurePolicy == admissionregistrationv1.Ignore {
		return nil, nil
	}
	if !slices.Contains(bp.actions, admissionregistrationv1.Deny) {
		if slices.Contains(bp.actions, admissionregistrationv1.Warn) {
			return []string{fmt.Sprintf("Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': %v", bp.policy, bp.binding, err)}, nil
		}
		return nil, nil
	}
	return nil, policyDenial(bp, metav1.StatusReasonInvalid, err.Error())
}

// policyDenial is a policy's refusal, worded and coded as Kubernetes'.
func policyDenial(bp *boundPolicy, reason metav1.StatusReason, msg string) error {
	code := int32(http.StatusUnprocessableEntity)
	switch reason {
	case metav1.StatusReasonForbidden:
		code = http.StatusForbidden
	case metav1.StatusReasonUnauthorized:
		code = http.StatusUnauthorized
	case metav1.StatusReasonRequestEntityTooLarge:
		code = http.StatusRequestEntityTooLarge
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: reason,
		Message: fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", bp.policy, bp.binding, msg),
	}}
}
