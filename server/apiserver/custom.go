package apiserver

import (
	"slices"
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/minik-dev/minik/server/registry"
)

// Custom resources are served for every established
// CustomResourceDefinition, beside the registry's built-in kinds. The set
// served is an immutable customSet the CRD loop (crdloop.go) replaces as
// definitions change; requests read whichever set is current.

// customSet is the custom resources served at one moment.
type customSet struct {
	// byGV holds the resources of each served group-version by plural.
	byGV map[schema.GroupVersion]map[string]*registry.Resource
	// versions lists each group's served versions, the preferred first.
	versions map[string][]string
	// groups are the groups served, sorted.
	groups []string
	// storage holds the resource of every definition's storage version
	// by definition name, for namespace deletion.
	storage map[string]*registry.Resource
}

// compiledCRD is the resources built for one definition at one
// generation and set of accepted names.
type compiledCRD struct {
	key      string
	served   []*registry.Resource
	storage  *registry.Resource
	versions []string
}

// newCustomSet builds the set serving crds.
func newCustomSet(crds []*compiledCRD) *customSet {
	set := &customSet{
		byGV:     map[schema.GroupVersion]map[string]*registry.Resource{},
		versions: map[string][]string{},
		storage:  map[string]*registry.Resource{},
	}
	for _, c := range crds {
		set.storage[c.storage.Custom.CRD] = c.storage
		for _, res := range c.served {
			gv := res.GroupVersion()
			if set.byGV[gv] == nil {
				set.byGV[gv] = map[string]*registry.Resource{}
			}
			set.byGV[gv][res.Name] = res
			if !slices.Contains(set.versions[gv.Group], gv.Version) {
				set.versions[gv.Group] = append(set.versions[gv.Group], gv.Version)
			}
		}
	}
	for g, vs := range set.versions {
		// Kubernetes' version priority: GA before beta before alpha,
		// higher numbers first.
		sort.Slice(vs, func(i, j int) bool { return version.CompareKubeAwareVersionStrings(vs[i], vs[j]) > 0 })
		set.groups = append(set.groups, g)
	}
	sort.Strings(set.groups)
	return set
}

// customResources is the current set (empty before the CRD loop ran).
func (s *Server) customResources() *customSet { return s.custom.Load() }

// lookupIn finds the resource served as plural name in gv: a built-in
// one, else a custom one.
func (s *Server) lookupIn(gv schema.GroupVersion, name string) (*registry.Resource, bool) {
	if res, ok := registry.LookupVersion(gv, name); ok {
		return res, true
	}
	res, ok := s.customResources().byGV[gv][name]
	return res, ok
}

// servesVersion reports whether /apis/GROUP/VERSION is served.
func (s *Server) servesVersion(group, v string) bool {
	if slices.Contains(s.builtinVersions(group), v) {
		return true
	}
	return slices.Contains(s.customResources().versions[group], v)
}

// groupVersions lists the versions of group served, preferred first.
func (s *Server) groupVersions(group string) []string {
	if vs := s.builtinVersions(group); len(vs) > 0 {
		return vs
	}
	return s.customResources().versions[group]
}

// builtinVersions lists the versions of a built-in group, preferred
// first: those of the registry's resources, v1 for a group served by
// handlers only; none for another group.
func (s *Server) builtinVersions(group string) []string {
	if vs := registry.Versions(group); len(vs) > 0 {
		return vs
	}
	if _, ok := handlerGroups[group]; ok {
		return []string{"v1"}
	}
	return nil
}

// allGroups lists the built-in groups, then the custom ones.
func (s *Server) allGroups() []string {
	groups := apiGroups()
	for _, g := range s.customResources().groups {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return groups
}

// compileCRD builds the resources of crd's served versions and of its
// storage version, which convert with conv (nil for strategy None).
func compileCRD(crd *apiextensionsv1.CustomResourceDefinition, key string, conv registry.Converter) (*compiledCRD, error) {
	c := &compiledCRD{key: key}
	for _, v := range crd.Spec.Versions {
		if !v.Served && !v.Storage {
			continue
		}
		res, err := registry.NewCustom(crd, v.Name)
		if err != nil {
			return nil, err
		}
		res.Custom.Converter = conv
		if v.Served {
			c.served = append(c.served, res)
			c.versions = append(c.versions, v.Name)
		}
		if v.Storage {
			c.storage = res
		}
	}
	if c.storage == nil {
		// Validation requires a storage version; a definition without
		// one is not served.
		return nil, errString("customresourcedefinition " + crd.Name + " has no storage version")
	}
	return c, nil
}
