package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/registry"
)

// requestInfo is what a resource request asks for, parsed from its path,
// method and query.
type requestInfo struct {
	Verb        string // get list watch create update patch delete deletecollection
	Resource    *registry.Resource
	Namespace   string
	Name        string
	Subresource string
}

// parseResourcePath parses the part of a path after "/api/v1/" (group
// "") or "/apis/GROUP/VERSION/". ok is false for a path that names no known
// resource; Verb is "" for a method the path does not serve.
func (s *Server) parseResourcePath(method string, gv schema.GroupVersion, rest string, watch bool) (requestInfo, bool) {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	var info requestInfo
	resName := ""
	switch {
	case len(parts) >= 3 && parts[0] == "namespaces" && s.isResource(gv, parts[2]):
		info.Namespace = parts[1]
		resName = parts[2]
		parts = parts[3:]
	default:
		resName = parts[0]
		parts = parts[1:]
	}
	res, found := s.lookupIn(gv, resName)
	if !found || resName == "" {
		return info, false
	}
	if info.Namespace != "" && !res.Namespaced {
		return info, false
	}
	info.Resource = res
	if len(parts) > 0 {
		info.Name = parts[0]
	}
	if len(parts) > 1 {
		info.Subresource = parts[1]
	}
	if len(parts) > 2 {
		return info, false
	}
	info.Verb = verbFor(method, info.Name != "", watch)
	return info, true
}

func (s *Server) isResource(gv schema.GroupVersion, name string) bool {
	_, ok := s.lookupIn(gv, name)
	return ok
}

func verbFor(method string, named, watch bool) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watch:
			return "watch"
		case named:
			return "get"
		}
		return "list"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		if named {
			return "update"
		}
	case http.MethodPatch:
		if named {
			return "patch"
		}
	case http.MethodDelete:
		if named {
			return "delete"
		}
		return "deletecollection"
	}
	return ""
}

// storageKey is where an object lives in the store (a view's objects
// where those of the resource it views live).
func storageKey(res *registry.Resource, namespace, name string) string {
	return res.Key(namespace, name)
}

// storagePrefix covers every object of res in namespace ("" = all).
func storagePrefix(res *registry.Resource, namespace string) string {
	return res.Prefix(namespace)
}
