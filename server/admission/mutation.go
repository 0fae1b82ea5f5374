package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	"github.com/minik-dev/minik/server/celexpr"
)

// Schemas gives the structured-merge-diff schemas of the kinds served,
// which apply configurations are merged by.
type Schemas interface {
	// TypeConverter returns the converter of objects of kind gvk, nil
	// for a kind without one. It is safe to call concurrently.
	TypeConverter(gvk schema.GroupVersionKind) managedfields.TypeConverter
}

// boundMutation is a MutatingAdmissionPolicy with one of its bindings,
// compiled.
type boundMutation struct {
	policy, binding string
	failurePolicy   admissionregistrationv1.FailurePolicyType
	reinvoke        bool
	paramSource
	match        *resourceMatch
	bindingMatch *resourceMatch // nil: what the policy matches
	conditions   []condition
	variables    []variable
	mutations    []mutation
	// broken is why the policy cannot be evaluated; its failurePolicy
	// then decides every request it matches.
	broken error
}

// mutation is one compiled patch of a policy.
type mutation struct {
	patchType admissionregistrationv1.PatchType
	prg       *celexpr.Program
}

// compileMutations pairs each binding with its policy (bindings of a
// missing policy do nothing) and compiles them, in the bindings' name
// order.
func compileMutations(ps []*admissionregistrationv1.MutatingAdmissionPolicy, bs []*admissionregistrationv1.MutatingAdmissionPolicyBinding) []*boundMutation {
	byName := map[string]*admissionregistrationv1.MutatingAdmissionPolicy{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b *admissionregistrationv1.MutatingAdmissionPolicyBinding) int {
		return strings.Compare(a.Name, b.Name)
	})
	var out []*boundMutation
	for _, b := range bs {
		if p, ok := byName[b.Spec.PolicyName]; ok {
			bm := &boundMutation{policy: p.Name, binding: b.Name, failurePolicy: admissionregistrationv1.Fail,
				reinvoke: p.Spec.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy}
			if p.Spec.FailurePolicy != nil {
				bm.failurePolicy = *p.Spec.FailurePolicy
			}
			bm.broken = bm.compile(p, b)
			out = append(out, bm)
		}
	}
	return out
}

func (bm *boundMutation) compile(p *admissionregistrationv1.MutatingAdmissionPolicy, b *admissionregistrationv1.MutatingAdmissionPolicyBinding) error {
	var err error
	if bm.match, err = compileMatch(p.Spec.MatchConstraints); err != nil {
		return err
	}
	if b.Spec.MatchResources != nil {
		if bm.bindingMatch, err = compileMatch(b.Spec.MatchResources); err != nil {
			return err
		}
	}
	// A binding without paramRef evaluates its policy once, with null
	// params.
	if err := bm.paramSource.compile(p.Spec.ParamKind, b.Spec.ParamRef); err != nil {
		return err
	}
	if bm.conditions, err = compileConditions(p.Spec.MatchConditions, celexpr.PolicyScope); err != nil {
		return err
	}
	if bm.variables, err = compileVariables(p.Spec.Variables); err != nil {
		return err
	}
	for i, m := range p.Spec.Mutations {
		var prg *celexpr.Program
		switch {
		case m.PatchType == admissionregistrationv1.PatchTypeApplyConfiguration && m.ApplyConfiguration != nil:
			prg, err = celexpr.CompileMutation(m.ApplyConfiguration.Expression, celexpr.ApplyConfigurationType)
		case m.PatchType == admissionregistrationv1.PatchTypeJSONPatch && m.JSONPatch != nil:
			prg, err = celexpr.CompileMutation(m.JSONPatch.Expression, celexpr.JSONPatchType)
		default:
			err = fmt.Errorf("unsupported patch type %q", m.PatchType)
		}
		if err != nil {
			return fmt.Errorf("mutations[%d]: %w", i, err)
		}
		bm.mutations = append(bm.mutations, mutation{m.PatchType, prg})
	}
	return nil
}

// mutateBinding applies one bound policy to a if it matches, once per
// parameter object; called tells whether it did.
func (c *Chain) mutateBinding(ctx context.Context, bm *boundMutation, a *Attributes) (called bool, err error) {
	if bm.broken != nil {
		if bm.match != nil {
			if ok, _ := bm.match.matches(ctx, a, c.cfg.Namespaces, false); !ok {
				return false, nil
			}
		}
		return false, bm.failed(a, bm.broken)
	}
	ok, err := c.bindingMatches(ctx, bm.match, bm.bindingMatch, a)
	if err != nil {
		return false, bm.failed(a, err)
	}
	if !ok {
		return false, nil
	}
	params, err := c.params(ctx, &bm.paramSource, a)
	if err != nil {
		return false, bm.failed(a, err)
	}
	for _, p := range params {
		if err := c.mutateWith(ctx, bm, a, p); err != nil {
			return true, err // failurePolicy applied
		}
	}
	return len(params) > 0, nil
}

// mutateWith evaluates bm's conditions, variables and mutations with one
// parameter object, and returns the error its failurePolicy makes of a
// failure. Each mutation sees the object the one before it made; under
// Ignore, a mutation that fails is skipped and the next one runs, as in
// Kubernetes.
func (c *Chain) mutateWith(ctx context.Context, bm *boundMutation, a *Attributes, params map[string]any) error {
	base, err := baseVars(a)
	if err != nil {
		return bm.failed(a, err)
	}
	vars := c.policyVars(ctx, a, base, params)
	ok, err := conditionsMatch(ctx, bm.conditions, vars)
	if err != nil || !ok {
		return bm.failed(a, err)
	}
	if err := evalVariables(ctx, bm.variables, vars); err != nil {
		return bm.failed(a, err)
	}
	for i, m := range bm.mutations {
		patched, err := c.applyMutation(ctx, m, a, vars)
		if err == nil {
			a.Object = patched
			vars[celexpr.Object], err = toMap(patched, a.Kind)
		}
		if err != nil {
			if err := bm.failed(a, fmt.Errorf("mutations[%d]: %w", i, err)); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyMutation evaluates m and returns a's object patched by it, a new
// object.
func (c *Chain) applyMutation(ctx context.Context, m mutation, a *Attributes, vars map[string]any) (runtime.Object, error) {
	if m.patchType == admissionregistrationv1.PatchTypeJSONPatch {
		p, err := m.prg.JSONPatch(ctx, vars)
		if err != nil {
			return nil, err
		}
		// The patch applies to the object with its apiVersion and kind,
		// as the expression saw it.
		orig, err := json.Marshal(vars[celexpr.Object])
		if err != nil {
			return nil, err
		}
		patched, err := applyPatchTo(orig, a.Object, p)
		if errors.Is(err, jsonpatch.ErrTestFailed) {
			// A failed test operation leaves the object as it was.
			return a.Object, nil
		}
		if err != nil {
			return nil, err
		}
		patched.GetObjectKind().SetGroupVersionKind(a.Object.GetObjectKind().GroupVersionKind())
		return patched, nil
	}
	cfg, err := m.prg.ApplyConfiguration(ctx, vars)
	if err != nil {
		return nil, err
	}
	return c.applyConfiguration(a, cfg)
}

// applyConfiguration merges cfg into a's object as server-side apply
// merges (maps merged, lists by their listType and keys), without taking
// ownership of any field, and returns the result as a new object of the
// same type.
func (c *Chain) applyConfiguration(a *Attributes, cfg map[string]any) (runtime.Object, error) {
	var tc managedfields.TypeConverter
	if c.cfg.Schemas != nil {
		tc = c.cfg.Schemas.TypeConverter(a.Kind)
	}
	if tc == nil {
		return nil, fmt.Errorf("no schema of kind %s to merge an apply configuration by", a.Kind)
	}
	live, err := toMap(a.Object, a.Kind)
	if err != nil {
		return nil, err
	}
	applied := &unstructured.Unstructured{Object: cfg}
	applied.SetGroupVersionKind(a.Kind)
	merged, err := patch.ApplyStructuredMergeDiff(tc, &unstructured.Unstructured{Object: live}, applied)
	if err != nil {
		return nil, err
	}
	u, ok := merged.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("the merge gave a %T", merged)
	}
	if _, ok := a.Object.(*unstructured.Unstructured); ok {
		return u, nil
	}
	out := reflect.New(reflect.TypeOf(a.Object).Elem()).Interface().(runtime.Object)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("decoding the merged object: %w", err)
	}
	// The type is as the object had it (typed objects often have none).
	out.GetObjectKind().SetGroupVersionKind(a.Object.GetObjectKind().GroupVersionKind())
	return out, nil
}

// failed applies bm's failurePolicy to an error of its evaluation (nil
// for none): under Fail a 403 naming the policy and binding, with
// reason Invalid, as Kubernetes answers.
func (bm *boundMutation) failed(a *Attributes, err error) error {
	if err == nil || bm.failurePolicy == admissionregistrationv1.Ignore {
		return nil
	}
	msg := fmt.Sprintf("policy '%s' with binding '%s' denied request: %v", bm.policy, bm.binding, err)
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonInvalid, Message: msg,
		Details: &metav1.StatusDetails{Name: a.Name, Group: a.Resource.Group, Kind: a.Resource.Resource,
			Causes: []metav1.StatusCause{{Message: msg}}},
	}}
}
