package manifests

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestParse(t *testing.T) {
	type got struct {
		Kind, Name string
		Document   int
		Line       int
	}
	tests := []struct {
		name string
		file string
		data string
		want []got
	}{
		{
			name: "documents",
			file: "app.yaml",
			data: "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---   \napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n--- # third\n# only a comment\n",
			want: []got{{"ConfigMap", "a", 1, 1}, {"Secret", "b", 3, 8}},
		},
		{
			name: "list",
			file: "list.yml",
			data: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: b}\n",
			want: []got{{"ConfigMap", "a", 1, 1}, {"Deployment", "b", 1, 1}},
		},
		{
			name: "json",
			file: "one.json",
			data: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}`,
			want: []got{{"Namespace", "n", 1, 1}},
		},
		{name: "empty", file: "empty.yaml", data: "\n---\n", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := parse(tc.file, []byte(tc.data))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var gots []got
			for _, o := range objs {
				gots = append(gots, got{o.u.GetKind(), o.u.GetName(), o.document, o.line})
			}
			if diff := cmp.Diff(tc.want, gots); diff != "" {
				t.Errorf("parse(%s) (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	tests := []struct {
		name     string
		data     string
		document int
		line     int
		want     string
	}{
		{name: "bad yaml", data: good + "---\napiVersion: v1\nkind: [\n", document: 2, line: 6, want: "app.yaml: document 2 (line 6): "},
		{name: "no kind", data: "apiVersion: v1\nmetadata:\n  name: a\n", document: 1, line: 1, want: "app.yaml: document 1 (line 1): kind must be set"},
		{name: "no apiVersion", data: good + "---\n---\nkind: ConfigMap\nmetadata:\n  name: b\n", document: 3, line: 7, want: "app.yaml: document 3 (line 7): apiVersion must be set"},
		{name: "no name", data: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: a-\n", document: 1, line: 1, want: "app.yaml: document 1 (line 1): metadata.name must be set (generateName cannot be applied)"},
		{name: "bad apiVersion", data: "apiVersion: a/b/c\nkind: X\nmetadata:\n  name: a\n", document: 1, line: 1, want: `app.yaml: document 1 (line 1): apiVersion "a/b/c": `},
		{name: "list item", data: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {}\n", document: 1, line: 1, want: "app.yaml: document 1 (line 1): items[0]: metadata.name must be set"},
		{name: "not an object", data: "- a\n- b\n", document: 1, line: 1, want: "app.yaml: document 1 (line 1): "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := parse("app.yaml", []byte(tc.data))
			if !errors.Is(err, ErrParse) {
				t.Fatalf("parse = %d objects, %v; want an error wrapping ErrParse", len(objs), err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("parse error %T is not a *ParseError", err)
			}
			if pe.File != "app.yaml" || pe.Document != tc.document || pe.Line != tc.line {
				t.Errorf("parse error at %s document %d line %d, want app.yaml document %d line %d", pe.File, pe.Document, pe.Line, tc.document, tc.line)
			}
			if msg := err.Error(); len(msg) < len(tc.want) || msg[:len(tc.want)] != tc.want {
				t.Errorf("parse error %q, want it to start with %q", msg, tc.want)
			}
		})
	}
}

func TestRecordName(t *testing.T) {
	tests := []struct{ file, want string }{
		{"app.yaml", "manifest-app.yaml"},
		{"coredns.json", "manifest-coredns.json"},
		{"App.yaml", "manifest-app.yaml-"},
		{"my app_v2.yml", "manifest-my-app-v2.yml-"},
	}
	names := map[string]string{}
	for _, tc := range tests {
		got := recordName(tc.file)
		if len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
			t.Errorf("recordName(%q) = %q, want prefix %q", tc.file, got, tc.want)
		}
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("recordName(%q) = %q, not a ConfigMap name: %v", tc.file, got, errs)
		}
		if prev, ok := names[got]; ok {
			t.Errorf("recordName(%q) = recordName(%q) = %q", tc.file, prev, got)
		}
		names[got] = tc.file
	}
}
