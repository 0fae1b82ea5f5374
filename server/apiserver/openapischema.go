package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
	generatedopenapi "k8s.io/kubernetes/pkg/generated/openapi"

	"github.com/minik-dev/minik/server/registry"
)

// The schemas of the built-in kinds are Kubernetes' generated OpenAPI
// definitions (with their descriptions: what kubectl explain shows). The
// definitions of every upstream type are large, so they are built only
// when a document is first asked for, cut down to the kinds served and
// what they refer to, and only the serialized documents are kept.

// builtinModels lists, by group-version, the OpenAPI model names of the
// built-in kinds served and of their lists.
var builtinModels = sync.OnceValue(func() map[schema.GroupVersion][]string {
	names := map[schema.GroupVersion][]string{}
	for _, res := range registry.All() {
		if res.Custom != nil {
			continue
		}
		gv := res.GroupVersion()
		for _, kind := range []string{res.Kind, res.Kind + "List"} {
			name, err := protobufScheme.ToOpenAPIDefinitionName(gv.WithKind(kind))
			if err == nil && !slices.Contains(names[gv], name) {
				names[gv] = append(names[gv], name)
			}
		}
	}
	for _, n := range names {
		slices.Sort(n)
	}
	return names
})

// definitionNamer names definitions as upstream does, and marks those of
// kinds with x-kubernetes-group-version-kind.
var definitionNamer = sync.OnceValue(func() *openapinamer.DefinitionNamer {
	return openapinamer.NewDefinitionNamer(protobufScheme)
})

// builtinSchemas returns the OpenAPI v3 schemas of the kinds of gv and
// of what they refer to, by name.
func builtinSchemas(gv schema.GroupVersion) (map[string]*spec.Schema, error) {
	cfg := &common.OpenAPIV3Config{
		Info:              openAPIInfo(),
		GetDefinitions:    generatedopenapi.GetOpenAPIDefinitions,
		GetDefinitionName: definitionNamer().GetDefinitionName,
	}
	return builder3.BuildOpenAPIDefinitionsForResources(cfg, builtinModels()[gv]...)
}

// objectMetaSchemas returns the OpenAPI v3 schemas of ObjectMeta and of
// what it refers to, which the documents of custom resources carry.
var objectMetaSchemas = sync.OnceValues(func() (map[string]*spec.Schema, error) {
	cfg := &common.OpenAPIV3Config{
		Info:              openAPIInfo(),
		GetDefinitions:    generatedopenapi.GetOpenAPIDefinitions,
		GetDefinitionName: definitionNamer().GetDefinitionName,
	}
	return builder3.BuildOpenAPIDefinitionsForResources(cfg, objectMetaModel)
})

func openAPIInfo() *spec.Info {
	return &spec.Info{InfoProps: spec.InfoProps{Title: "minik", Version: kubeGitVersion}}
}

// openAPIV2 is the OpenAPI v2 document (definitions only, which is what
// kubectl reads of it: schemas for explain, patch strategies for apply),
// as JSON and in gnostic's protobuf form, with their ETag.
type openAPIV2 struct {
	json, protobuf []byte
	etag           string
}

var openAPIV2Doc = sync.OnceValues(func() (*openAPIV2, error) {
	sw, err := openAPIV2Builtin()
	if err != nil {
		return nil, err
	}
	return encodeOpenAPIV2(sw)
})

// openAPIV2Builtin builds the v2 definitions of the built-in kinds. The
// result is shared: copy before changing it.
var openAPIV2Builtin = sync.OnceValues(func() (*spec.Swagger, error) {
	var names []string
	for _, n := range builtinModels() {
		names = append(names, n...)
	}
	slices.Sort(names)
	cfg := &common.Config{
		Info:              openAPIInfo(),
		GetDefinitions:    generatedopenapi.GetOpenAPIDefinitions,
		GetDefinitionName: definitionNamer().GetDefinitionName,
	}
	return builder.BuildOpenAPIDefinitionsForResources(cfg, names...)
})

// encodeOpenAPIV2 serializes sw as JSON and protobuf, with its ETag.
func encodeOpenAPIV2(sw *spec.Swagger) (*openAPIV2, error) {
	data, err := json.Marshal(sw)
	if err != nil {
		return nil, err
	}
	doc, err := openapiv2.ParseDocument(data)
	if err != nil {
		return nil, err
	}
	pb, err := proto.Marshal(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &openAPIV2{json: data, protobuf: pb, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}, nil
}
