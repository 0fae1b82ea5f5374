package celexpr

import (
	"context"
	"errors"
	"testing"

	"github.com/google/cel-go/cel"
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
