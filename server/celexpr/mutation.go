package celexpr

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apiserver/pkg/cel/common"
	"k8s.io/apiserver/pkg/cel/library"
	"k8s.io/apiserver/pkg/cel/mutation"
	"k8s.io/apiserver/pkg/cel/mutation/dynamic"
)

// The expressions of a MutatingAdmissionPolicy's mutations read what a
// policy's read, and may also build values of the types Object (the
// admitted object, its fields Object.spec, Object.spec.containers, …)
// and JSONPatch (op, path, from, value), and call jsonpatch.escapeKey.
// The types are apiserver's dynamic mutation types: an Object value is
// checked against its field path when evaluated, not against the kind's
// schema when compiled (the merge that follows does that).

// Result types of mutations.
var (
	// ApplyConfigurationType is what an applyConfiguration expression
	// gives: Object{…}.
	ApplyConfigurationType = cel.ObjectType(mutation.ObjectTypeName)
	// JSONPatchType is what a jsonPatch expression gives: a list of
	// JSONPatch{…}.
	JSONPatchType = cel.ListType(cel.ObjectType(mutation.JSONPatchTypeName))
)

// mutationScope names the environment of mutations in the cache of
// environments; it cannot be a variable name.
const mutationScope = "<mutation>"

// CompileMutation checks expr, a mutation's expression, and returns its
// program. want is ApplyConfigurationType or JSONPatchType; an expression
// statically of another type is refused. The error message is fit to
// report as the reason the field is invalid.
func CompileMutation(expr string, want *cel.Type) (*Program, error) {
	return Compile(expr, append([]string{mutationScope}, PolicyScope...), want)
}

// ApplyConfiguration evaluates an applyConfiguration program and returns
// the configuration it built, as the map of its JSON form (without
// apiVersion and kind).
func (p *Program) ApplyConfiguration(ctx context.Context, vars map[string]any) (map[string]any, error) {
	out, _, err := p.prg.ContextEval(ctx, activation(vars))
	if err != nil {
		return nil, err
	}
	obj, ok := out.(*dynamic.ObjectVal)
	if !ok || out.Type().TypeName() != mutation.ObjectTypeName {
		return nil, fmt.Errorf("expression gave %s, not Object: %w", out.Type().TypeName(), ErrType)
	}
	if err := obj.CheckTypeNamesMatchFieldPathNames(); err != nil {
		return nil, fmt.Errorf("type mismatch: %w", err)
	}
	m, ok := obj.Value().(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expression gave %v: %w", obj.Value(), ErrType)
	}
	return m, nil
}

// JSONPatch evaluates a jsonPatch program and returns the patch it built,
// as RFC 6902 JSON.
func (p *Program) JSONPatch(ctx context.Context, vars map[string]any) ([]byte, error) {
	out, _, err := p.prg.ContextEval(ctx, activation(vars))
	if err != nil {
		return nil, err
	}
	list, ok := out.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("expression gave %s, not a list of JSONPatch: %w", out.Type().TypeName(), ErrType)
	}
	var ops []map[string]any
	for it := list.Iterator(); it.HasNext() == types.True; {
		v, err := it.Next().ConvertToNative(reflect.TypeFor[*mutation.JSONPatchVal]())
		if err != nil {
			return nil, fmt.Errorf("expression gave a list of other values than JSONPatch: %w", ErrType)
		}
		op, err := patchOperation(v.(*mutation.JSONPatchVal))
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	if ops == nil {
		ops = []map[string]any{}
	}
	return json.Marshal(ops)
}

// patchOperation is one JSONPatch value as the JSON of an operation.
func patchOperation(v *mutation.JSONPatchVal) (map[string]any, error) {
	op := map[string]any{"op": v.Op, "path": v.Path}
	if v.From != "" {
		op["from"] = v.From
	}
	if v.Val == nil {
		return op, nil
	}
	if obj, ok := v.Val.(*dynamic.ObjectVal); ok {
		if err := obj.CheckTypeNamesMatchFieldPathNames(); err != nil {
			return nil, fmt.Errorf("type mismatch: %w", err)
		}
	}
	// A CEL value becomes JSON through protobuf's Value, as Kubernetes
	// does: it knows every CEL literal (maps, lists, Object values).
	pb, err := v.Val.ConvertToNative(reflect.TypeFor[*structpb.Value]())
	if err != nil {
		return nil, fmt.Errorf("the value of JSONPatch %s %s is not JSON: %w", v.Op, v.Path, err)
	}
	b, err := json.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("the value of JSONPatch %s %s is not JSON: %w", v.Op, v.Path, err)
	}
	op["value"] = json.RawMessage(b)
	return op, nil
}

// mutationOptions are the options of the mutation environment, applied
// after the others: the resolver wraps the type provider built so far.
func mutationOptions() []cel.EnvOption {
	return []cel.EnvOption{library.JSONPatch(), common.ResolverEnvOption(&mutation.DynamicTypeResolver{})}
}
