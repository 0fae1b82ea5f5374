package apiserver

import (
	"maps"
	"sync"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	openapiv2 "k8s.io/apiextensions-apiserver/pkg/controller/openapi/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// crdV2 keeps the last OpenAPI v2 document built with custom resources,
// for the set of custom resources it was built from: the set is replaced,
// never changed, when a CRD changes.
var crdV2 struct {
	mu  sync.Mutex
	set *customSet
	doc *openAPIV2
}

// openAPIV2 returns the OpenAPI v2 document: the built-in definitions,
// plus one per served version of each custom resource with a schema,
// named as upstream names them (the group reversed, version, kind).
func (s *Server) openAPIV2() (*openAPIV2, error) {
	set := s.customResources()
	if len(set.byGV) == 0 {
		return openAPIV2Doc()
	}
	crdV2.mu.Lock()
	defer crdV2.mu.Unlock()
	if crdV2.set == set {
		return crdV2.doc, nil
	}
	base, err := openAPIV2Builtin()
	if err != nil {
		return nil, err
	}
	sw := *base
	sw.SwaggerProps.Definitions = maps.Clone(base.Definitions)
	for gv, byName := range set.byGV {
		for _, res := range byName {
			sch := customSchemaV2(res.Custom.Schema)
			sch.AddExtension("x-kubernetes-group-version-kind", []any{
				map[string]any{"group": gv.Group, "version": gv.Version, "kind": res.Kind},
			})
			sw.Definitions[customModelName(gv, res.Kind)] = *sch
		}
	}
	doc, err := encodeOpenAPIV2(&sw)
	if err != nil {
		return nil, err
	}
	crdV2.set, crdV2.doc = set, doc
	return doc, nil
}

// customSchemaV2 is a custom kind's schema as OpenAPI v2 publishes it
// (kubectl's client-side validation reads it): without what v2 cannot say
// (junctors, nullable), and only "an object" where unknown fields are kept
// at the root, since kubectl would refuse every field a v2 schema does not
// list.
func customSchemaV2(st *structuralschema.Structural) *spec.Schema {
	if st == nil || st.XPreserveUnknownFields {
		return &spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}}}
	}
	sch := openapiv2.ToStructuralOpenAPIV2(st).ToKubeOpenAPI()
	withKindProperties(sch, "#/definitions/")
	return sch
}

// customSchemaV3 is a custom kind's schema as OpenAPI v3 publishes it
// (kubectl explain reads it).
func customSchemaV3(st *structuralschema.Structural) *spec.Schema {
	if st == nil {
		return &spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}}}
	}
	sch := st.ToKubeOpenAPI()
	withKindProperties(sch, "#/components/schemas/")
	return sch
}

// objectMetaModel is the OpenAPI model name of ObjectMeta, which custom
// kinds' metadata refers to.
const objectMetaModel = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

// withKindProperties adds what every object has to a custom kind's
// schema, as upstream publishes it: apiVersion, kind and metadata, a
// reference to ObjectMeta under refPrefix.
func withKindProperties(sch *spec.Schema, refPrefix string) {
	if sch.Properties == nil {
		sch.Properties = map[string]spec.Schema{}
	}
	str := func(desc string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"string"}, Description: desc}}
	}
	// The descriptions are apimachinery's own documentation of the
	// fields, as built-in kinds show them.
	typeMeta := metav1.TypeMeta{}.SwaggerDoc()
	if _, ok := sch.Properties["apiVersion"]; !ok {
		sch.Properties["apiVersion"] = str(typeMeta["apiVersion"])
	}
	if _, ok := sch.Properties["kind"]; !ok {
		sch.Properties["kind"] = str(typeMeta["kind"])
	}
	sch.Properties["metadata"] = spec.Schema{SchemaProps: spec.SchemaProps{
		Description: metav1.PartialObjectMetadata{}.SwaggerDoc()["metadata"],
		AllOf:       []spec.Schema{{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(refPrefix + objectMetaModel)}}},
	}}
}
