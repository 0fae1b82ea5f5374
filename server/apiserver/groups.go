package apiserver

import (
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/registry"
)

// Resources outside the core group are served under /apis/GROUP/VERSION,
// with the discovery documents kubectl and client-go read: /apis lists the
// groups, /apis/GROUP the group and its versions (the preferred first),
// /apis/GROUP/VERSION the resources of one version.

var coreV1 = schema.GroupVersion{Version: "v1"}

// cutResourcePrefix splits a resource path into the part after its
// group-version prefix and that group-version: /api/v1/REST is core v1,
// /apis/GROUP/VERSION/REST is GROUP/VERSION for a group-version minik
// serves (a served version of a built-in or custom group). ok
// is false for any other path.
func (s *Server) cutResourcePrefix(path string) (rest string, gv schema.GroupVersion, ok bool) {
	if rest, ok := strings.CutPrefix(path, "/api/v1/"); ok {
		return rest, coreV1, true
	}
	rest, ok = strings.CutPrefix(path, "/apis/")
	if !ok {
		return "", gv, false
	}
	group, rest, ok1 := strings.Cut(rest, "/")
	version, rest, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || !s.servesVersion(group, version) {
		return "", gv, false
	}
	return rest, schema.GroupVersion{Group: group, Version: version}, true
}

// apiPrefix is the path prefix of gv's resources, with a trailing slash.
func apiPrefix(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version + "/"
	}
	return "/apis/" + gv.String() + "/"
}

// operationGroup names gv's group in OpenAPI operation IDs, as Kubernetes
// does: "Core", "Policy".
func operationGroup(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "Core"
	}
	return strings.ToUpper(gv.Group[:1]) + gv.Group[1:]
}

// apiGroups lists the groups of the registry's resources, in order.
func apiGroups() []string {
	var groups []string
	for _, res := range registry.All() {
		if res.Group != "" && !slices.Contains(groups, res.Group) {
			groups = append(groups, res.Group)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(handlerGroups)) {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return groups
}

// apiGroup is the discovery document of group, which serves versions,
// the preferred first.
func apiGroup(group string, versions []string) metav1.APIGroup {
	g := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: group}
	for _, v := range versions {
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
	}
	if len(g.Versions) > 0 {
		g.PreferredVersion = g.Versions[0]
	}
	return g
}

// apiGroupList is the /apis document.
func (s *Server) apiGroupList() *metav1.APIGroupList {
	list := &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   []metav1.APIGroup{},
	}
	for _, g := range s.allGroups() {
		ag := apiGroup(g, s.groupVersions(g))
		ag.TypeMeta = metav1.TypeMeta{}
		list.Groups = append(list.Groups, ag)
	}
	for _, g := range s.remoteAPIs().groups {
		if !slices.ContainsFunc(list.Groups, func(ag metav1.APIGroup) bool { return ag.Name == g }) {
			ag := s.remoteGroup(g)
			ag.TypeMeta = metav1.TypeMeta{}
			list.Groups = append(list.Groups, *ag)
		}
	}
	return list
}

// groupDiscovery returns the discovery document at path (without a
// trailing slash) for a served group, or nil.
func (s *Server) groupDiscovery(path string) any {
	rest, ok := strings.CutPrefix(path, "/apis/")
	if !ok {
		return nil
	}
	group, version, versioned := strings.Cut(rest, "/")
	versions := s.groupVersions(group)
	if len(versions) == 0 {
		if g := s.remoteGroup(group); g != nil && !versioned {
			return g
		}
		return nil
	}
	if !versioned {
		g := apiGroup(group, versions)
		return &g
	}
	if !slices.Contains(versions, version) {
		return nil
	}
	gv := schema.GroupVersion{Group: group, Version: version}
	list := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
	}
	served := registry.All()
	for _, name := range slices.Sorted(maps.Keys(s.customResources().byGV[gv])) {
		served = append(served, s.customResources().byGV[gv][name])
	}
	for _, res := range served {
		if res.GroupVersion() != gv {
			continue
		}
		list.APIResources = append(list.APIResources, resourceDiscovery(res)...)
	}
	list.APIResources = append(list.APIResources, handlerGroups[group]...)
	return list
}

// resourceDiscovery describes res and its status and scale subresources.
func resourceDiscovery(res *registry.Resource) []metav1.APIResource {
	out := []metav1.APIResource{{
		Name: res.Name, SingularName: res.Singular, Namespaced: res.Namespaced, Kind: res.Kind,
		Verbs:      metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
		ShortNames: res.ShortNames, Categories: slices.Concat(categories[res.Name], res.Categories),
	}}
	if res.HasStatus {
		out = append(out, metav1.APIResource{
			Name: res.Name + "/status", Namespaced: res.Namespaced, Kind: res.Kind,
			Verbs: metav1.Verbs{"get", "patch", "update"},
		})
	}
	if res.HasScale {
		out = append(out, metav1.APIResource{
			Name: res.Name + "/scale", Namespaced: res.Namespaced, Group: "autoscaling",
			Version: "v1", Kind: "Scale", Verbs: metav1.Verbs{"get", "patch", "update"},
		})
	}
	if res.Approval != nil {
		out = append(out, metav1.APIResource{
			Name: res.Name + "/approval", Namespaced: res.Namespaced, Kind: res.Kind,
			Verbs: metav1.Verbs{"get", "patch", "update"},
		})
	}
	return out
}
