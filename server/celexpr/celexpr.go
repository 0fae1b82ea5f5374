// Package celexpr compiles and evaluates the CEL expressions of admission
// control: the matchConditions of admission webhooks, and the
// validations, messageExpressions, matchConditions and variables of
// ValidatingAdmissionPolicies, and the mutations of
// MutatingAdmissionPolicies (mutation.go).
//
// Expressions are compiled with github.com/google/cel-go and its standard
// extensions (strings, sets, lists, math, encoders, regex, optional
// types). Objects are given to an expression as the maps of their JSON
// form, so every variable is dynamically typed: a field missing from an
// object is an evaluation error ("no such key"), as for a Kubernetes
// expression that does not first test it with has().
//
// Programs are compiled once, when a configuration is stored or cached,
// and are safe for concurrent evaluation.
package celexpr

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
)

// Variables an expression may read. Object, OldObject and Request are
// those of every admission expression; Params, NamespaceObject and
// Variables are a policy's only.
const (
	Object          = "object"
	OldObject       = "oldObject"
	Request         = "request"
	Params          = "params"
	NamespaceObject = "namespaceObject"
	Variables       = "variables"
)

// Scopes of expressions: which variables they may read.
var (
	// WebhookScope is what a webhook's matchConditions read.
	WebhookScope = []string{Object, OldObject, Request}
	// PolicyScope is what a policy's expressions read.
	PolicyScope = []string{Object, OldObject, Request, Params, NamespaceObject, Variables}
)

// CostLimit bounds the runtime cost of one evaluation, as Kubernetes'
// per-expression limit does.
const CostLimit = 1_000_000

// ErrType is the error of an expression whose result is not of the type
// its use needs (a matchCondition must give a bool).
var ErrType = errors.New("celexpr: wrong result type")

// Program is a compiled expression.
type Program struct {
	expr string
	want *cel.Type
	prg  cel.Program
}

var (
	envMu sync.Mutex
	envs  = map[string]*cel.Env{} // by scope; guarded by envMu
)

// env returns the environment of the variables vars, built once; with
// mutationScope among them, that of mutations.
func env(vars []string) (*cel.Env, error) {
	key := fmt.Sprint(vars)
	envMu.Lock()
	defer envMu.Unlock()
	if e, ok := envs[key]; ok {
		return e, nil
	}
	opts := []cel.EnvOption{
		cel.OptionalTypes(),
		ext.Strings(), ext.Sets(), ext.Lists(), ext.Math(), ext.Encoders(), ext.Regex(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
	}
	mutating := false
	for _, v := range vars {
		if v == mutationScope {
			mutating = true
			continue
		}
		opts = append(opts, cel.Variable(v, cel.DynType))
	}
	if mutating {
		opts = append(opts, mutationOptions()...)
	}
	e, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, err
	}
	envs[key] = e
	return e, nil
}

// Compile checks expr against the variables of scope and returns its
// program. want is the result type needed (cel.BoolType, cel.StringType)
// or nil for any; an expression statically of another type is refused.
// The error message is fit to report as the reason a field is invalid.
func Compile(expr string, scope []string, want *cel.Type) (*Program, error) {
	e, err := env(scope)
	if err != nil {
		return nil, err
	}
	ast, iss := e.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compilation failed: %v", iss.Err())
	}
	if want != nil {
		out := ast.OutputType()
		if !out.IsExactType(types.DynType) && !out.IsExactType(want) {
			return nil, fmt.Errorf("must evaluate to %s, not %s", want, out)
		}
	}
	prg, err := e.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("compilation failed: %v", err)
	}
	return &Program{expr: expr, want: want, prg: prg}, nil
}

// String returns the expression's source.
func (p *Program) String() string { return p.expr }

// Eval evaluates the program with vars, the values of its variables (maps
// and lists of JSON values, or nil). Variables missing from vars are null.
func (p *Program) Eval(ctx context.Context, vars map[string]any) (ref.Val, error) {
	out, _, err := p.prg.ContextEval(ctx, activation(vars))
	if err != nil {
		return nil, err
	}
	if p.want != nil && out.Type() != p.want {
		return nil, fmt.Errorf("expression %q gave %s: %w", p.expr, out.Type().TypeName(), ErrType)
	}
	return out, nil
}

// Bool evaluates a program whose result is a bool.
func (p *Program) Bool(ctx context.Context, vars map[string]any) (bool, error) {
	out, err := p.Eval(ctx, vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("expression %q gave %s: %w", p.expr, out.Type().TypeName(), ErrType)
	}
	return b, nil
}

// Text evaluates a program whose result is a string.
func (p *Program) Text(ctx context.Context, vars map[string]any) (string, error) {
	out, err := p.Eval(ctx, vars)
	if err != nil {
		return "", err
	}
	s, ok := out.Value().(string)
	if !ok {
		return "", fmt.Errorf("expression %q gave %s: %w", p.expr, out.Type().TypeName(), ErrType)
	}
	return s, nil
}

// activation gives every variable of vars, a nil one as null.
func activation(vars map[string]any) map[string]any {
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		if v == nil {
			out[k] = types.NullValue
			continue
		}
		out[k] = v
	}
	return out
}
