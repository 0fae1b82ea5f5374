package apiserver

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	_ "unsafe" // for go:linkname

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	_ "k8s.io/client-go/applyconfigurations" // links the schemas below
	"sigs.k8s.io/structured-merge-diff/v6/typed"

	"github.com/minik-dev/minik/server/registry"
)

// The schemas field management merges built-in kinds by are client-go's:
// the structured-merge-diff definitions of every type it has apply
// configurations for, one YAML document. client-go's converter parses
// that document whole on first use (measured: 21 MB allocated, about 1 MB
// kept, 9 MiB more resident in an idle server), which a server pays at
// start, as its own control loops write at once. Field management needs
// only the kinds written, so each kind's converter parses the definitions
// of its own type and of the types it refers to, cut from the document's
// text when the kind is first written.

// applySchemaYAML is the document: "types:" then a list of definitions,
// each starting at the beginning of a line with "- name: NAME". client-go
// keeps it unexported: should a new version rename it, this reads empty,
// every built-in kind would merge without a schema, and the tests of this
// file fail.
//
//go:linkname applySchemaYAML k8s.io/client-go/applyconfigurations/internal.schemaYAML
var applySchemaYAML typed.YAMLObject

// applyDefinitions indexes applySchemaYAML: the text of each definition
// (its lines, newline-terminated) by type name. The texts share the
// document's memory.
var applyDefinitions = sync.OnceValue(func() map[string]string {
	const start = "\n- name: "
	defs := map[string]string{}
	doc := string(applySchemaYAML)
	i := strings.Index(doc, start)
	for i >= 0 {
		doc = doc[i+1:]
		i = strings.Index(doc, start)
		def := doc
		if i >= 0 {
			def = doc[:i+1]
		} else if !strings.HasSuffix(def, "\n") {
			def += "\n"
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(def, "- name: "), "\n")
		defs[name] = def
	}
	return defs
})

// kindParsers keeps the parser of each kind's type once built, by
// the type's OpenAPI model name.
var kindParsers struct {
	mu     sync.Mutex
	byName map[string]*typed.Parser // guarded by mu
}

// kindTypeConverter returns the converter of objects of kind gvk, from
// client-go's schema of its type in every version the kind is served in
// (field management converts an object's managed fields between them)
// and of the types those refer to. It fails if client-go has no schema of
// the kind.
func kindTypeConverter(gvk schema.GroupVersionKind) (managedfields.TypeConverter, error) {
	name, err := protobufScheme.ToOpenAPIDefinitionName(gvk)
	if err != nil {
		return nil, err
	}
	roots := []string{name}
	for _, v := range registry.Versions(gvk.Group) {
		other := schema.GroupVersionKind{Group: gvk.Group, Version: v, Kind: gvk.Kind}
		if n, err := protobufScheme.ToOpenAPIDefinitionName(other); err == nil && v != gvk.Version && protobufScheme.Recognizes(other) {
			roots = append(roots, n)
		}
	}
	key := strings.Join(roots, ",")
	kindParsers.mu.Lock()
	defer kindParsers.mu.Unlock()
	p, ok := kindParsers.byName[key]
	if !ok {
		if p, err = parseClosure(roots...); err != nil {
			return nil, fmt.Errorf("schema of %v: %w", gvk, err)
		}
		if kindParsers.byName == nil {
			kindParsers.byName = map[string]*typed.Parser{}
		}
		kindParsers.byName[key] = p
	}
	return managedfields.NewSchemeTypeConverter(protobufScheme, p), nil
}

// parseClosure parses the definitions of the types roots and of every
// type they refer to (a "namedType:" line), directly or not.
func parseClosure(roots ...string) (*typed.Parser, error) {
	defs := applyDefinitions()
	var doc strings.Builder
	doc.WriteString("types:\n")
	seen := map[string]bool{}
	for _, r := range roots {
		seen[r] = true
	}
	for todo := slices.Clone(roots); len(todo) > 0; {
		name := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		def, ok := defs[name]
		if !ok {
			return nil, fmt.Errorf("no definition of type %q", name)
		}
		doc.WriteString(def)
		for line := range strings.Lines(def) {
			_, ref, ok := strings.Cut(line, "namedType: ")
			if ref = strings.TrimSpace(ref); ok && !seen[ref] {
				seen[ref] = true
				todo = append(todo, ref)
			}
		}
	}
	return typed.NewParser(typed.YAMLObject(doc.String()))
}
