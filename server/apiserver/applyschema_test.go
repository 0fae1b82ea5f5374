package apiserver

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/structured-merge-diff/v6/schema"
	"sigs.k8s.io/structured-merge-diff/v6/typed"

	"github.com/minik-dev/minik/server/registry"
)

// TestKindSchemasMatchClientGo checks, for every built-in kind served,
// that the definitions its converter parsed are client-go's, and that
// they hold every type they refer to: the merge then reads the same
// schema as with client-go's whole document. A kind client-go has no
// schema of has no converter.
func TestKindSchemasMatchClientGo(t *testing.T) {
	whole, err := typed.NewParser(applySchemaYAML)
	if err != nil {
		t.Fatalf("parsing the whole document: %v", err)
	}
	checked := 0
	for _, res := range registry.All() {
		if res.Custom != nil || res.View != nil {
			continue
		}
		gvk := res.GroupVersion().WithKind(res.Kind)
		name, err := protobufScheme.ToOpenAPIDefinitionName(gvk)
		if err != nil {
			t.Errorf("%v: no OpenAPI name: %v", gvk, err)
			continue
		}
		_, known := whole.Schema.FindNamedType(name)
		_, err = kindTypeConverter(gvk)
		if !known {
			if err == nil {
				t.Errorf("%v: a converter without a schema in client-go", gvk)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", gvk, err)
			continue
		}
		part, err := parseClosure(name)
		if err != nil {
			t.Fatalf("%v: %v", gvk, err)
		}
		for _, def := range part.Schema.Types {
			want, _ := whole.Schema.FindNamedType(def.Name)
			if !reflect.DeepEqual(def, want) {
				t.Errorf("%v: definition of %s differs from client-go's", gvk, def.Name)
			}
			for _, ref := range namedRefs(def.Atom) {
				if _, ok := part.Schema.FindNamedType(ref); !ok {
					t.Errorf("%v: %s refers to %s, not parsed", gvk, def.Name, ref)
				}
			}
		}
		checked++
	}
	if checked < 40 {
		t.Errorf("checked %d kinds, want the built-in kinds (at least 40)", checked)
	}
}

// namedRefs lists the names of the types a refers to.
func namedRefs(a schema.Atom) []string {
	var refs []string
	ref := func(r schema.TypeRef) {
		if r.NamedType != nil {
			refs = append(refs, *r.NamedType)
		}
		refs = append(refs, namedRefs(r.Inlined)...)
	}
	if a.List != nil {
		ref(a.List.ElementType)
	}
	if a.Map != nil {
		ref(a.Map.ElementType)
		for _, f := range a.Map.Fields {
			ref(f.Type)
		}
	}
	return refs
}

// TestKindConverterRecordsAsClientGo records the creation of a pod with
// keyed lists (containers by name, ports by port and protocol) with the
// pod kind's converter and with client-go's whole one: the managedFields
// are the same.
func TestKindConverterRecordsAsClientGo(t *testing.T) {
	res, ok := registry.LookupIn("", "pods")
	if !ok {
		t.Fatal("no pods resource")
	}
	pod := newLive(res).(*corev1.Pod)
	pod.Name = "p"
	pod.Spec.Containers = []corev1.Container{
		{Name: "a", Image: "busybox", Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}},
		{Name: "b", Image: "busybox", Env: []corev1.EnvVar{{Name: "X", Value: "1"}}},
	}
	gvk := res.GroupVersion().WithKind(res.Kind)
	kind, err := kindTypeConverter(gvk)
	if err != nil {
		t.Fatal(err)
	}
	record := func(tc managedfields.TypeConverter) string {
		fm, err := managedfields.NewDefaultFieldManager(tc, protobufScheme, protobufScheme, protobufScheme, gvk, gvk.GroupVersion(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		obj := fm.UpdateNoErrors(newLive(res), pod.DeepCopy(), "test")
		return managers(obj.(metav1.Object))["test/Update"]
	}
	got, want := record(kind), record(applyconfigurations.NewTypeConverter(protobufScheme))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("managedFields (-client-go +kind):\n%s", diff)
	}
	if !strings.Contains(got, `"k:{\"name\":\"a\"}"`) {
		t.Errorf("managedFields %s: container a not recorded by its key", got)
	}
}
