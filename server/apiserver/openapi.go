package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/registry"
)

// The OpenAPI v3 documents served, one per group-version, describe its
// operations, not the schemas of its types: enough for clients to learn which query
// parameters the server honours (kubectl checks PATCH for fieldValidation
// before it relies on server-side validation). Clients that want schemas
// to compute patches fall back to the types compiled into them.

type openAPIDoc struct {
	OpenAPI string                     `json:"openapi"`
	Info    map[string]string          `json:"info"`
	Paths   map[string]openAPIPathItem `json:"paths"`
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

// openAPIDocs holds the document of each served group-version, by its
// path below /openapi/v3 ("api/v1", "apis/policy/v1"), with its hash.
var openAPIDocs = sync.OnceValue(func() map[string]openAPIDocument {
	docs := map[string]openAPIDocument{}
	for _, res := range registry.All() {
		gv := res.GroupVersion()
		if _, ok := docs[openAPIKey(gv)]; !ok {
			docs[openAPIKey(gv)] = newOpenAPIDocument(openAPIFor(gv, registry.All()))
		}
	}
	return docs
})

// allOpenAPIDocs is openAPIDocs plus a document for each group-version
// of the custom resources served now.
func (s *Server) allOpenAPIDocs() map[string]openAPIDocument {
	set := s.customResources()
	if len(set.byGV) == 0 {
		return openAPIDocs()
	}
	docs := maps.Clone(openAPIDocs())
	for gv, byName := range set.byGV {
		docs[openAPIKey(gv)] = newOpenAPIDocument(openAPIFor(gv, slices.Collect(maps.Values(byName))))
	}
	return docs
}

// openAPIKey is the path of gv's document below /openapi/v3.
func openAPIKey(gv schema.GroupVersion) string {
	return strings.TrimSuffix(strings.TrimPrefix(apiPrefix(gv), "/"), "/")
}

func newOpenAPIDocument(data []byte) openAPIDocument {
	sum := sha256.Sum256(data)
	return openAPIDocument{data: data, hash: hex.EncodeToString(sum[:8])}
}

type openAPIDocument struct {
	data []byte
	hash string
}

// openAPIFor builds the document of the resources of gv among resources.
func openAPIFor(gv schema.GroupVersion, resources []*registry.Resource) []byte {
	doc := openAPIDoc{
		OpenAPI: "3.0.0",
		Info:    map[string]string{"title": "minik", "version": kubeGitVersion},
		Paths:   map[string]openAPIPathItem{},
	}
	str := map[string]string{"type": "string"}
	slices.SortFunc(resources, func(a, b *registry.Resource) int { return strings.Compare(a.Name, b.Name) })
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
	data, _ := json.Marshal(doc)
	return data
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case "/openapi/v3", "/openapi/v3/":
		paths := map[string]any{}
		for key, d := range s.allOpenAPIDocs() {
			paths[key] = map[string]string{"serverRelativeURL": "/openapi/v3/" + key + "?hash=" + d.hash}
		}
		writeJSON(w, http.StatusOK, map[string]any{"paths": paths})
		return true
	}
	if key, ok := strings.CutPrefix(r.URL.Path, "/openapi/v3/"); ok {
		if d, ok := s.allOpenAPIDocs()[key]; ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(d.data)
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
