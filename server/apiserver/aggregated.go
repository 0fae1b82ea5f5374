package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Aggregated discovery (apidiscovery.k8s.io) answers /api and /apis with
// every group, version and resource in one document, so that a client
// such as kubectl learns the whole API in two requests instead of one per
// group-version. The document is built from the classic per-version
// documents, so both always describe the same API.

// discoveryGroup is the group of the aggregated discovery kinds.
const discoveryGroup = "apidiscovery.k8s.io"

// aggregatedVersion returns the apidiscovery version ("v2" or "v2beta1")
// of the first media type in r's Accept header asking for an
// APIGroupDiscoveryList as JSON, or "" when the client asks for the
// classic documents first (or only).
func aggregatedVersion(r *http.Request) string {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt != "application/json" {
			if mt == "*/*" || mt == "application/*" {
				return ""
			}
			continue // protobuf is served only for resources
		}
		if params["as"] == "" {
			return ""
		}
		if params["as"] == "APIGroupDiscoveryList" && params["g"] == discoveryGroup &&
			(params["v"] == "v2" || params["v"] == "v2beta1") {
			return params["v"]
		}
	}
	return ""
}

// aggregatedDoc is an aggregated document, encoded, with what it was
// built from: the built-in resources never change, so the custom and
// remote sets (immutable, replaced on change) tell whether it is current.
type aggregatedDoc struct {
	custom  *customSet
	remote  *remoteSet
	version string
	data    []byte
	etag    string
}

// aggregatedBytes returns the encoded aggregated document of /api (core)
// or /apis in version v, and its ETag, built again only when the API
// served has changed since the last one.
func (s *Server) aggregatedBytes(core bool, v string) ([]byte, string, error) {
	custom, remote := s.customResources(), s.remote.Load()
	slot := &s.discoveryCache[0]
	if core {
		slot = &s.discoveryCache[1]
	}
	if d := slot.Load(); d != nil && d.custom == custom && d.remote == remote && d.version == v {
		return d.data, d.etag, nil
	}
	list := s.aggregatedDiscovery(core)
	list.TypeMeta = metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: discoveryGroup + "/" + v}
	data, err := json.Marshal(list)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	d := &aggregatedDoc{custom: custom, remote: remote, version: v, data: data, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	slot.Store(d)
	return d.data, d.etag, nil
}

// serveAggregated writes the aggregated document of /api (core) or /apis
// in version v, with an ETag clients may send back in If-None-Match.
func (s *Server) serveAggregated(w http.ResponseWriter, r *http.Request, core bool, v string) {
	data, etag, err := s.aggregatedBytes(core, v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Content-Type", "application/json;g="+discoveryGroup+";v="+v+";as=APIGroupDiscoveryList")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

// aggregatedDiscovery lists the core group (core) or every other group:
// the built-in ones, the custom ones, then those served by Services.
func (s *Server) aggregatedDiscovery(core bool) *apidiscoveryv2.APIGroupDiscoveryList {
	list := &apidiscoveryv2.APIGroupDiscoveryList{Items: []apidiscoveryv2.APIGroupDiscovery{}}
	if core {
		list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{
			Versions: []apidiscoveryv2.APIVersionDiscovery{versionDiscovery(apiResourceList(), apidiscoveryv2.DiscoveryFreshnessCurrent)},
		})
		return list
	}
	for _, g := range s.allGroups() {
		group := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		for _, v := range s.groupVersions(g) {
			doc, ok := s.groupDiscovery("/apis/" + g + "/" + v).(*metav1.APIResourceList)
			if !ok {
				continue
			}
			group.Versions = append(group.Versions, versionDiscovery(doc, apidiscoveryv2.DiscoveryFreshnessCurrent))
		}
		list.Items = append(list.Items, group)
	}
	for _, g := range s.remoteDiscovery() {
		if !slices.ContainsFunc(list.Items, func(l apidiscoveryv2.APIGroupDiscovery) bool { return l.Name == g.Name }) {
			list.Items = append(list.Items, g)
		}
	}
	return list
}

// versionDiscovery converts the classic resource list of one
// group-version: each resource with its subresources nested under it.
func versionDiscovery(doc *metav1.APIResourceList, freshness apidiscoveryv2.DiscoveryFreshness) apidiscoveryv2.APIVersionDiscovery {
	gv, _ := schema.ParseGroupVersion(doc.GroupVersion)
	out := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: freshness}
	index := map[string]int{}
	parent := func(name string, scope apidiscoveryv2.ResourceScope) *apidiscoveryv2.APIResourceDiscovery {
		i, ok := index[name]
		if !ok {
			// A subresource listed without its resource gets a
			// placeholder, as upstream gives it.
			i = len(out.Resources)
			index[name] = i
			out.Resources = append(out.Resources, apidiscoveryv2.APIResourceDiscovery{
				Resource: name, Scope: scope, ResponseKind: &metav1.GroupVersionKind{},
			})
		}
		return &out.Resources[i]
	}
	for _, r := range doc.APIResources {
		scope := apidiscoveryv2.ScopeCluster
		if r.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		kind := responseKind(gv, r)
		name, sub, isSub := strings.Cut(r.Name, "/")
		if !isSub {
			p := parent(name, scope)
			*p = apidiscoveryv2.APIResourceDiscovery{
				Resource: name, ResponseKind: kind, Scope: scope, SingularResource: r.SingularName,
				Verbs: r.Verbs, ShortNames: r.ShortNames, Categories: r.Categories, Subresources: p.Subresources,
			}
			continue
		}
		p := parent(name, scope)
		p.Subresources = append(p.Subresources, apidiscoveryv2.APISubresourceDiscovery{
			Subresource: sub, ResponseKind: kind, Verbs: r.Verbs,
		})
	}
	return out
}

// responseKind is the kind r answers with: its own group and version where
// it names them (autoscaling/v1 Scale), else those of gv.
func responseKind(gv schema.GroupVersion, r metav1.APIResource) *metav1.GroupVersionKind {
	k := &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.Kind}
	if r.Group != "" || r.Version != "" {
		k.Group, k.Version = r.Group, r.Version
	}
	return k
}
