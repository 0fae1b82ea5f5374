package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/minik-dev/minik/server/registry"
)

// The OpenAPI v3 documents served, one per group-version, describe the
// schemas of its kinds (components.schemas, what kubectl explain reads)
// and its PATCH operations: enough for clients to learn which query
// parameters the server honours (kubectl checks PATCH for fieldValidation
// before it relies on server-side validation). /openapi/v2 holds the
// schemas of every built-in kind served.

type openAPIDoc struct {
	OpenAPI    string                     `json:"openapi"`
	Info       map[string]string          `json:"info"`
	Paths      map[string]openAPIPathItem `json:"paths"`
	Components *openAPIComponents         `json:"components,omitempty"`
}

type openAPIComponents struct {
	Schemas map[string]*spec.Schema `json:"schemas"`
}

type openAPIPathItem struct {
	Patch *openAPIOperation `json:"patch,omitempty"`
}

type openAPIOperation struct {
	OperationID string              `json:"operationId"`
	GVK         map[string]string   `json:"x-kubernetes-group-version-kind"`
	Parameters  []openAPIParameter  `json:"parameters"`
	RequestBody *openAPIRequestBody `json:"requestBody,omitempty"`
}

type openAPIParameter struct {
	Name   string            `json:"name"`
	In     string            `json:"in"`
	Schema map[string]string `json:"schema"`
}

type openAPIRequestBody struct {
	Content  map[string]any `json:"content"`
	Required bool           `json:"required"`
}

// openAPIDocs holds the document of each built-in group-version, by its
// path below /openapi/v3 ("api/v1", "apis/policy/v1"). Its hash is known
// at once; its schemas are built when it is first read.
var openAPIDocs = sync.OnceValue(func() map[string]*openAPIDocument {
	docs := map[string]*openAPIDocument{}
	for _, res := range registry.All() {
		gv := res.GroupVersion()
		key := openAPIKey(gv)
		if _, ok := docs[key]; ok {
			continue
		}
		paths := openAPIFor(gv, registry.All())
		// The schemas are compiled in: the paths, the model names and
		// the version of the definitions identify the document.
		sum := sha256.Sum256(fmt.Appendf(paths, "%s %v", kubeGitVersion, builtinModels()[gv]))
		docs[key] = &openAPIDocument{
			hash: hex.EncodeToString(sum[:8]),
			data: sync.OnceValues(func() ([]byte, error) { return builtinOpenAPIDoc(gv) }),
		}
	}
	return docs
})

// builtinOpenAPIDoc builds the document of the built-in group-version gv.
func builtinOpenAPIDoc(gv schema.GroupVersion) ([]byte, error) {
	schemas, err := builtinSchemas(gv)
	if err != nil {
		return nil, err
	}
	return json.Marshal(newOpenAPIDoc(gv, registry.All(), schemas))
}

// allOpenAPIDocs is openAPIDocs plus a document for each group-version
// of the custom resources served now, with the structural schema of each.
func (s *Server) allOpenAPIDocs() map[string]*openAPIDocument {
	set := s.customResources()
	if len(set.byGV) == 0 {
		return openAPIDocs()
	}
	docs := maps.Clone(openAPIDocs())
	for gv, byName := range set.byGV {
		resources := slices.Collect(maps.Values(byName))
		schemas := map[string]*spec.Schema{}
		metaSchemas, err := objectMetaSchemas()
		if err != nil {
			docs[openAPIKey(gv)] = &openAPIDocument{data: func() ([]byte, error) { return nil, err }}
			continue
		}
		maps.Copy(schemas, metaSchemas)
		for _, res := range resources {
			sch := customSchemaV3(res.Custom.Schema)
			sch.AddExtension("x-kubernetes-group-version-kind", []any{
				map[string]any{"group": gv.Group, "version": gv.Version, "kind": res.Kind},
			})
			schemas[customModelName(gv, res.Kind)] = sch
		}
		data, err := json.Marshal(newOpenAPIDoc(gv, resources, schemas))
		sum := sha256.Sum256(data)
		docs[openAPIKey(gv)] = &openAPIDocument{
			hash: hex.EncodeToString(sum[:8]),
			data: func() ([]byte, error) { return data, err },
		}
	}
	return docs
}

// customModelName names the schema of a custom kind as upstream: the
// group reversed, then version and kind ("com.example.v1.Widget").
func customModelName(gv schema.GroupVersion, kind string) string {
	parts := strings.Split(gv.Group, ".")
	slices.Reverse(parts)
	return strings.Join(parts, ".") + "." + gv.Version + "." + kind
}

// openAPIKey is the path of gv's document below /openapi/v3.
func openAPIKey(gv schema.GroupVersion) string {
	return strings.TrimSuffix(strings.TrimPrefix(apiPrefix(gv), "/"), "/")
}

// openAPIDocument is one group-version's document and its hash, which
// clients use to cache it.
type openAPIDocument struct {
	hash string
	data func() ([]byte, error)
}

// openAPIFor returns the paths of the document of the resources of gv
// among resources, as JSON.
func openAPIFor(gv schema.GroupVersion, resources []*registry.Resource) []byte {
	data, _ := json.Marshal(newOpenAPIDoc(gv, resources, nil))
	return data
}

// newOpenAPIDoc builds the document of the resources of gv among
// resources, with schemas.
func newOpenAPIDoc(gv schema.GroupVersion, resources []*registry.Resource, schemas map[string]*spec.Schema) openAPIDoc {
	doc := openAPIDoc{
		OpenAPI: "3.0.0",
		Info:    map[string]string{"title": "minik", "version": kubeGitVersion},
		Paths:   map[string]openAPIPathItem{},
	}
	if len(schemas) > 0 {
		doc.Components = &openAPIComponents{Schemas: schemas}
	}
	str := map[string]string{"type": "string"}
	resources = slices.SortedFunc(slices.Values(resources), func(a, b *registry.Resource) int { return strings.Compare(a.Name, b.Name) })
	for _, res := range resources {
		if res.GroupVersion() != gv {
			continue
		}
		path := apiPrefix(gv) + res.Name + "/{name}"
		if res.Namespaced {
			path = apiPrefix(gv) + "namespaces/{namespace}/" + res.Name + "/{name}"
		}
		doc.Paths[path] = openAPIPathItem{Patch: &openAPIOperation{
			OperationID: "patch" + operationGroup(gv) + operationVersion(gv) + res.Kind,
			GVK:         map[string]string{"group": gv.Group, "version": gv.Version, "kind": res.Kind},
			Parameters: []openAPIParameter{
				{Name: "dryRun", In: "query", Schema: str},
				{Name: "fieldManager", In: "query", Schema: str},
				{Name: "fieldValidation", In: "query", Schema: str},
			},
			RequestBody: &openAPIRequestBody{Required: true, Content: map[string]any{
				"application/json-patch+json":  map[string]any{},
				"application/merge-patch+json": map[string]any{},
			}},
		}}
	}
	return doc
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case "/openapi/v2":
		s.serveOpenAPIV2(w, r)
		return true
	case "/openapi/v3", "/openapi/v3/":
		paths := map[string]any{}
		for key, d := range s.allOpenAPIDocs() {
			paths[key] = map[string]string{"serverRelativeURL": "/openapi/v3/" + key + "?hash=" + d.hash}
		}
		writeJSON(w, http.StatusOK, map[string]any{"paths": paths})
		return true
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/openapi/v3/")
	if !ok {
		return false
	}
	d, ok := s.allOpenAPIDocs()[key]
	if !ok {
		return false
	}
	data, err := d.data()
	if err != nil {
		s.log.Error("building an openapi document", "path", key, "err", err)
		s.writeStatus(w, r, apierrors.NewInternalError(err), schema.GroupResource{}, "")
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("hash") == d.hash {
		// As upstream: the URL with the hash names this content only.
		w.Header().Set("Cache-Control", "public, immutable")
	}
	w.Write(data)
	return true
}

// openAPIV2Protobuf is the media type of the protobuf form of /openapi/v2
// that kubectl asks for.
const openAPIV2Protobuf = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

func (s *Server) serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	doc, err := s.openAPIV2()
	if err != nil {
		s.log.Error("building the openapi v2 document", "err", err)
		s.writeStatus(w, r, apierrors.NewInternalError(err), schema.GroupResource{}, "")
		return
	}
	w.Header().Set("ETag", doc.etag)
	if r.Header.Get("If-None-Match") == doc.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if acceptsOpenAPIProtobuf(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", openAPIV2Protobuf)
		w.Write(doc.protobuf)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc.json)
}

// acceptsOpenAPIProtobuf reports whether an Accept header asks for the
// protobuf form of /openapi/v2, under either name clients use for it.
func acceptsOpenAPIProtobuf(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		// Not mime.ParseMediaType: "@" is not allowed in a media type.
		mt, _, _ := strings.Cut(part, ";")
		mt = strings.TrimSpace(mt)
		if mt == "application/com.github.proto-openapi.spec.v2@v1.0+protobuf" || mt == openAPIV2Protobuf {
			return true
		}
	}
	return false
}

// operationVersion names gv's version in OpenAPI operation IDs: "V1",
// "V1beta1".
func operationVersion(gv schema.GroupVersion) string {
	return strings.ToUpper(gv.Version[:1]) + gv.Version[1:]
}
