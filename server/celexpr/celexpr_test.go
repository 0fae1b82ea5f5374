package celexpr

import (
	"context"
	"errors"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/go-cmp/cmp"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		expr    string
		scope   []string
		want    *cel.Type
		wantErr bool
	}{
		{`object.metadata.name == "a"`, WebhookScope, cel.BoolType, false},
		{`object.metadata.name ==`, WebhookScope, cel.BoolType, true},
		{`params.x == 1`, WebhookScope, cel.BoolType, true}, // params is a policy's only
		{`params.x == 1`, PolicyScope, cel.BoolType, false},
		{`"text"`, PolicyScope, cel.BoolType, true},
		{`"text"`, PolicyScope, cel.StringType, false},
		{`object.spec.replicas`, PolicyScope, cel.BoolType, false}, // dynamic: checked when evaluated
		{`"a,b".split(",").size() == 2`, WebhookScope, cel.BoolType, false},
	}
	for _, tc := range tests {
		_, err := Compile(tc.expr, tc.scope, tc.want)
		if (err != nil) != tc.wantErr {
			t.Errorf("Compile(%q) = %v, want error %v", tc.expr, err, tc.wantErr)
		}
	}
}

func TestEval(t *testing.T) {
	ctx := context.Background()
	obj := map[string]any{"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "x"}}, "spec": map[string]any{"replicas": int64(3)}}
	p, err := Compile(`object.spec.replicas > 2 && object.metadata.labels.app == "x" && oldObject == null`, WebhookScope, cel.BoolType)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Bool(ctx, map[string]any{Object: obj, OldObject: nil}); err != nil || !ok {
		t.Errorf("Bool = %v, %v; want true", ok, err)
	}
	dyn, err := Compile(`object.spec.replicas`, WebhookScope, cel.BoolType)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Bool(ctx, map[string]any{Object: obj}); !errors.Is(err, ErrType) {
		t.Errorf("Bool of an int = %v, want ErrType", err)
	}
	missing, _ := Compile(`object.spec.paused`, WebhookScope, nil)
	if _, err := missing.Eval(ctx, map[string]any{Object: obj}); err == nil {
		t.Errorf("Eval of a missing field succeeded")
	}
	msg, err := Compile(`"replicas: " + string(object.spec.replicas)`, PolicyScope, cel.StringType)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := msg.Text(ctx, map[string]any{Object: obj}); err != nil || s != "replicas: 3" {
		t.Errorf("Text = %q, %v", s, err)
	}
}

func TestCompileMutation(t *testing.T) {
	tests := []struct {
		expr    string
		want    *cel.Type
		wantErr bool
	}{
		{`Object{metadata: Object.metadata{labels: {"a": "b"}}}`, ApplyConfigurationType, false},
		{`Object{metadata: Object.metadata{labels: {"a": "b"}}}`, JSONPatchType, true},
		{`[JSONPatch{op: "add", path: "/metadata/labels/" + jsonpatch.escapeKey("a/b"), value: "c"}]`, JSONPatchType, false},
		{`[JSONPatch{op: "add", path: "/x", value: 1}]`, ApplyConfigurationType, true},
		{`variables.patch`, JSONPatchType, false}, // dynamic: checked when evaluated
		{`Object{`, ApplyConfigurationType, true},
		{`"text"`, ApplyConfigurationType, true},
		{`Object{spec: 1}`, ApplyConfigurationType, false},
	}
	for _, tc := range tests {
		_, err := CompileMutation(tc.expr, tc.want)
		if (err != nil) != tc.wantErr {
			t.Errorf("CompileMutation(%q) = %v, want error %v", tc.expr, err, tc.wantErr)
		}
	}
	if _, err := Compile(`Object{}`, PolicyScope, nil); err == nil {
		t.Errorf("Compile(Object{}) of a validation succeeded; the mutation types are a mutation's only")
	}
}

func TestApplyConfiguration(t *testing.T) {
	ctx := context.Background()
	obj := map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"containers": []any{map[string]any{"name": "c"}}}}
	p, err := CompileMutation(`Object{metadata: Object.metadata{labels: {"owner": object.metadata.name}},
		spec: Object.spec{containers: [Object.spec.containers{name: "c", image: "busybox"}]}}`, ApplyConfigurationType)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.ApplyConfiguration(ctx, map[string]any{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"owner": "web"}},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ApplyConfiguration (-want +got):\n%s", diff)
	}
	wrong, err := CompileMutation(`Object{spec: Object.metadata{name: "x"}}`, ApplyConfigurationType)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.ApplyConfiguration(ctx, map[string]any{Object: obj}); err == nil {
		t.Errorf("ApplyConfiguration of Object.metadata under spec succeeded")
	}
}

func TestJSONPatch(t *testing.T) {
	ctx := context.Background()
	obj := map[string]any{"metadata": map[string]any{"name": "web"}}
	p, err := CompileMutation(`[
		JSONPatch{op: "add", path: "/metadata/labels", value: {"a/b": object.metadata.name}},
		JSONPatch{op: "add", path: "/spec/containers/0/env/-", value: Object.spec.containers.env{name: "X", value: "1"}},
		JSONPatch{op: "move", from: "/a", path: "/b"},
		JSONPatch{op: "replace", path: "/spec/replicas", value: 3}
	]`, JSONPatchType)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.JSONPatch(ctx, map[string]any{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"op":"add","path":"/metadata/labels","value":{"a/b":"web"}},` +
		`{"op":"add","path":"/spec/containers/0/env/-","value":{"name":"X","value":"1"}},` +
		`{"from":"/a","op":"move","path":"/b"},` +
		`{"op":"replace","path":"/spec/replicas","value":3}]`
	if string(got) != want {
		t.Errorf("JSONPatch = %s, want %s", got, want)
	}
}
