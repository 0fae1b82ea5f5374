package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	"github.com/minik-dev/minik/server/celexpr"
)

// Config holds what a Chain needs from the server.
type Config struct {
	// Services reaches webhooks behind a Service (nil: such webhooks
	// fail, and their failurePolicy decides).
	Services ServiceDialer
	// Namespaces reads namespaces for namespaceSelectors and policies.
	Namespaces NamespaceGetter
	// Params reads the parameters of policies.
	Params ParamGetter
	// Schemas gives the schemas apply configurations of mutating
	// policies are merged by (nil: such mutations fail, and their
	// failurePolicy decides).
	Schemas Schemas
	Logger  *slog.Logger
}

// Configurations are the admission objects in force, as stored.
type Configurations struct {
	Mutating   []*admissionregistrationv1.MutatingWebhookConfiguration
	Validating []*admissionregistrationv1.ValidatingWebhookConfiguration
	Policies   []*admissionregistrationv1.ValidatingAdmissionPolicy
	Bindings   []*admissionregistrationv1.ValidatingAdmissionPolicyBinding

	MutatingPolicies []*admissionregistrationv1.MutatingAdmissionPolicy
	MutatingBindings []*admissionregistrationv1.MutatingAdmissionPolicyBinding
}

// Chain admits requests by the configurations of its last Update. Its
// methods are safe for concurrent use.
type Chain struct {
	cfg  Config
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
}

// snapshot is one compiled set of configurations, never modified.
type snapshot struct {
	mutating   []*webhook
	validating []*webhook
	bindings   []*boundPolicy
	mutations  []*boundMutation
}

// New returns a Chain with no configurations.
func New(cfg Config) *Chain {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Chain{cfg: cfg, log: cfg.Logger.With("component", "admission")}
	c.snap.Store(&snapshot{})
	return c
}

// Update compiles cs and puts it in force. cs is not kept.
func (c *Chain) Update(cs Configurations) {
	s := &snapshot{}
	mut := slices.Clone(cs.Mutating)
	slices.SortFunc(mut, func(a, b *admissionregistrationv1.MutatingWebhookConfiguration) int {
		return strings.Compare(a.Name, b.Name)
	})
	for _, cfg := range mut {
		for _, h := range cfg.Webhooks {
			s.mutating = append(s.mutating, compileWebhook(webhookSpec{
				config: cfg.Name, name: h.Name, cc: h.ClientConfig, rules: h.Rules, failurePolicy: h.FailurePolicy,
				sideEffects: h.SideEffects, timeoutSeconds: h.TimeoutSeconds, reviewVersions: h.AdmissionReviewVersions,
				nsSel: h.NamespaceSelector, objSel: h.ObjectSelector, conditions: h.MatchConditions,
				reinvoke: h.ReinvocationPolicy != nil && *h.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy,
			}, c.cfg.Services))
		}
	}
	val := slices.Clone(cs.Validating)
	slices.SortFunc(val, func(a, b *admissionregistrationv1.ValidatingWebhookConfiguration) int {
		return strings.Compare(a.Name, b.Name)
	})
	for _, cfg := range val {
		for _, h := range cfg.Webhooks {
			s.validating = append(s.validating, compileWebhook(webhookSpec{
				config: cfg.Name, name: h.Name, cc: h.ClientConfig, rules: h.Rules, failurePolicy: h.FailurePolicy,
				sideEffects: h.SideEffects, timeoutSeconds: h.TimeoutSeconds, reviewVersions: h.AdmissionReviewVersions,
				nsSel: h.NamespaceSelector, objSel: h.ObjectSelector, conditions: h.MatchConditions,
			}, c.cfg.Services))
		}
	}
	s.bindings = compilePolicies(cs.Policies, cs.Bindings)
	s.mutations = compileMutations(cs.MutatingPolicies, cs.MutatingBindings)
	old := c.snap.Swap(s)
	// Calls under way finish on the old clients; their idle connections
	// go now.
	for _, w := range append(old.mutating, old.validating...) {
		if w.client != nil {
			w.client.CloseIdleConnections()
		}
	}
}

// Empty reports whether no webhook or policy is in force, so that a
// request needs no Attributes built.
func (c *Chain) Empty() bool {
	s := c.snap.Load()
	return len(s.mutating) == 0 && len(s.validating) == 0 && len(s.bindings) == 0 && len(s.mutations) == 0
}

// exprVars builds the variables of a's CEL expressions once, on demand.
func exprVars(a *Attributes) func() (map[string]any, error) {
	var (
		once sync.Once
		vars map[string]any
		err  error
	)
	return func() (map[string]any, error) {
		once.Do(func() { vars, err = baseVars(a) })
		return vars, err
	}
}

// baseVars are the variables every admission expression reads: object,
// oldObject and request.
func baseVars(a *Attributes) (map[string]any, error) {
	obj, err := toMap(a.Object, a.Kind)
	if err != nil {
		return nil, err
	}
	old, err := toMap(a.OldObject, a.Kind)
	if err != nil {
		return nil, err
	}
	req, err := requestMap(a)
	if err != nil {
		return nil, err
	}
	return map[string]any{celexpr.Object: obj, celexpr.OldObject: old, celexpr.Request: req}, nil
}

// requestMap is the AdmissionRequest of a as CEL's request variable,
// built directly: converting the typed request costs more than the
// expressions reading it.
func requestMap(a *Attributes) (map[string]any, error) {
	gvk := map[string]any{"group": a.Kind.Group, "version": a.Kind.Version, "kind": a.Kind.Kind}
	gvr := map[string]any{"group": a.Resource.Group, "version": a.Resource.Version, "resource": a.Resource.Resource}
	groups := make([]any, len(a.User.Groups))
	for i, g := range a.User.Groups {
		groups[i] = g
	}
	user := map[string]any{"username": a.User.Username, "uid": a.User.UID, "groups": groups}
	if len(a.User.Extra) > 0 {
		extra := make(map[string]any, len(a.User.Extra))
		for k, vs := range a.User.Extra {
			l := make([]any, len(vs))
			for i, v := range vs {
				l[i] = v
			}
			extra[k] = l
		}
		user["extra"] = extra
	}
	m := map[string]any{
		"kind": gvk, "resource": gvr, "subResource": a.SubResource,
		"requestKind": gvk, "requestResource": gvr, "requestSubResource": a.SubResource,
		"name": a.Name, "namespace": a.Namespace, "operation": string(a.Operation),
		"userInfo": user, "dryRun": a.DryRun,
	}
	if a.Options != nil {
		opts, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a.Options)
		if err != nil {
			return nil, err
		}
		m["options"] = opts
	}
	return m, nil
}

// Mutate applies the mutating policies that match a, then calls the
// mutating webhooks that match it, in order, replacing a.Object by each
// patched result. Then it runs once more, in the same order, the
// policies and webhooks with reinvocationPolicy IfNeeded that a later
// change followed. It returns the webhooks' warnings, and the error of a
// denial or a failure under failurePolicy Fail.
func (c *Chain) Mutate(ctx context.Context, a *Attributes) ([]string, error) {
	s := c.snap.Load()
	if (len(s.mutating) == 0 && len(s.mutations) == 0) || exempt(a) {
		return nil, nil
	}
	// seen is the object each IfNeeded policy binding or webhook last
	// saw.
	seen := map[any][]byte{}
	warnings, err := c.mutatePass(ctx, s, a, nil, seen)
	if err != nil || len(seen) == 0 || a.Object == nil {
		return warnings, err
	}
	now, _ := json.Marshal(a.Object)
	changed := func(k any) bool {
		before, ok := seen[k]
		return ok && !bytes.Equal(before, now)
	}
	more, err := c.mutatePass(ctx, s, a, changed, nil)
	return append(warnings, more...), err
}

// mutatePass runs the policy bindings, then the webhooks, of s on a in
// order: all of them when only is nil, else those only accepts. It
// records in seen (if not nil) the object each IfNeeded one saw last.
func (c *Chain) mutatePass(ctx context.Context, s *snapshot, a *Attributes, only func(any) bool, seen map[any][]byte) ([]string, error) {
	for _, bm := range s.mutations {
		if a.Object == nil || (only != nil && !only(bm)) {
			continue
		}
		called, err := c.mutateBinding(ctx, bm, a)
		if err != nil {
			return nil, err
		}
		if called && bm.reinvoke && seen != nil {
			seen[bm], _ = json.Marshal(a.Object)
		}
	}
	var warnings []string
	for _, w := range s.mutating {
		if only != nil && !only(w) {
			continue
		}
		called, warn, err := c.mutateOnce(ctx, w, a)
		warnings = append(warnings, warn...)
		if err != nil {
			return warnings, err
		}
		if called && w.reinvoke && seen != nil {
			seen[w], _ = json.Marshal(a.Object)
		}
	}
	return warnings, nil
}

// mutateOnce calls w if it applies to a and applies its patch.
func (c *Chain) mutateOnce(ctx context.Context, w *webhook, a *Attributes) (called bool, warnings []string, err error) {
	ok, err := w.applies(ctx, a, c, exprVars(a))
	if !ok || err != nil {
		return false, nil, err
	}
	resp, err := w.call(ctx, a)
	var ce *callError
	if errors.As(err, &ce) {
		c.log.Warn("mutating webhook failed", "webhook", w.name, "err", err)
		_, err = w.failed(ce)
		return false, nil, err
	}
	if !resp.Allowed {
		return true, resp.Warnings, denial(w.name, resp.Result)
	}
	if len(resp.Patch) == 0 || a.Object == nil {
		return true, resp.Warnings, nil
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		_, err = w.failed(&callError{w.name, fmt.Errorf("unsupported patch type %v", resp.PatchType)})
		return true, resp.Warnings, err
	}
	patched, err := applyPatch(a.Object, resp.Patch)
	if err != nil {
		_, err = w.failed(&callError{w.name, err})
		return true, resp.Warnings, err
	}
	a.Object = patched
	return true, resp.Warnings, nil
}

// applyPatch returns obj with a JSON patch applied, as a new object of
// its type.
func applyPatch(obj runtime.Object, patch []byte) (runtime.Object, error) {
	orig, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return applyPatchTo(orig, obj, patch)
}

// applyPatchTo returns orig, the JSON of obj, with a JSON patch applied,
// as a new object of obj's type.
func applyPatchTo(orig []byte, obj runtime.Object, patch []byte) (runtime.Object, error) {
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, fmt.Errorf("decoding the patch: %w", err)
	}
	out, err := p.Apply(orig)
	if err != nil {
		return nil, fmt.Errorf("applying the patch: %w", err)
	}
	patched := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(runtime.Object)
	if err := kjson.UnmarshalCaseSensitivePreserveInts(out, patched); err != nil {
		return nil, fmt.Errorf("decoding the patched object: %w", err)
	}
	return patched, nil
}

// Validate evaluates the policies bound to a, then calls the validating
// webhooks that match a, in parallel. It returns every warning, and the
// first denial (in configuration order) or failure under failurePolicy
// Fail.
func (c *Chain) Validate(ctx context.Context, a *Attributes) ([]string, error) {
	s := c.snap.Load()
	if exempt(a) || (len(s.validating) == 0 && len(s.bindings) == 0) {
		return nil, nil
	}
	vars := exprVars(a)
	warnings, err := c.validatePolicies(ctx, s.bindings, a, vars)
	if err != nil {
		return warnings, err
	}
	type result struct {
		warnings []string
		err      error
	}
	results := make([]result, len(s.validating))
	var wg sync.WaitGroup
	for i, w := range s.validating {
		ok, err := w.applies(ctx, a, c, vars)
		if !ok {
			results[i].err = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].warnings, results[i].err = c.validateOnce(ctx, w, a)
		}()
	}
	wg.Wait()
	for _, r := range results {
		warnings = append(warnings, r.warnings...)
	}
	for _, r := range results {
		if r.err != nil {
			return warnings, r.err
		}
	}
	return warnings, nil
}

func (c *Chain) validateOnce(ctx context.Context, w *webhook, a *Attributes) ([]string, error) {
	resp, err := w.call(ctx, a)
	var ce *callError
	if errors.As(err, &ce) {
		c.log.Warn("validating webhook failed", "webhook", w.name, "err", err)
		_, err = w.failed(ce)
		return nil, err
	}
	if !resp.Allowed {
		return resp.Warnings, denial(w.name, resp.Result)
	}
	return resp.Warnings, nil
}
