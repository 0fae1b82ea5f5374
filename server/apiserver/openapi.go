package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/minik-dev/minik/server/registry"
)

// The OpenAPI v3 documents served describe the operations of core/v1, not
// the schemas of its types: enough for clients to learn which query
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

var openAPIv1 = sync.OnceValues(func() ([]byte, string) {
	doc := openAPIDoc{
		OpenAPI: "3.0.0",
		Info:    map[string]string{"title": "minik", "version": kubeGitVersion},
		Paths:   map[string]openAPIPathItem{},
	}
	str := map[string]string{"type": "string"}
	for _, res := range registry.All() {
		if res.Group != "" {
			continue // this document is api/v1's
		}
		path := "/api/v1/" + res.Name + "/{name}"
		if res.Namespaced {
			path = "/api/v1/namespaces/{namespace}/" + res.Name + "/{name}"
		}
		doc.Paths[path] = openAPIPathItem{Patch: &openAPIOperation{
			OperationID: "patchCoreV1" + res.Kind,
			GVK:         map[string]string{"group": "", "version": "v1", "kind": res.Kind},
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
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:8])
})

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case "/openapi/v3", "/openapi/v3/":
		_, hash := openAPIv1()
		writeJSON(w, http.StatusOK, map[string]any{"paths": map[string]any{
			"api/v1": map[string]string{"serverRelativeURL": "/openapi/v3/api/v1?hash=" + hash},
		}})
		return true
	case "/openapi/v3/api/v1":
		data, _ := openAPIv1()
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
		return true
	}
	return false
}
