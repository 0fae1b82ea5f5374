package controllers

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/server/registry"
)

// The garbage collector follows the built-in kinds that no controller
// keeps a typed informer of (Secrets, ConfigMaps, ServiceAccounts,
// Namespaces, webhook configurations, …) through the metadata of their
// objects, as it follows custom kinds: any stored object can be deleted
// in the foreground or with its dependents orphaned, and any can own or
// be owned. Without this, a Secret deleted with propagationPolicy
// Foreground would keep its foregroundDeletion finalizer for ever.

// metadataKinds returns the kinds the API server stores that typed does
// not follow. Views (events.k8s.io Events) are followed through the kind
// whose objects they show.
func metadataKinds(typed []*gcKind) []*gcKind {
	var out []*gcKind
	for _, r := range registry.All() {
		if r.View != nil || r.Custom != nil {
			continue
		}
		if slices.ContainsFunc(typed, func(k *gcKind) bool { return k.resource == r.Name }) {
			continue
		}
		out = append(out, &gcKind{group: r.Group, version: r.Version, kind: r.Kind, resource: r.Name, namespaced: r.Namespaced})
	}
	return out
}

// followMetadata makes gc follow k through c's metadata client. Its
// informer starts with the custom kinds' (runCustom).
func (gc *GarbageCollector) followMetadata(c *gcCustom, k *gcKind) error {
	gvr := schema.GroupVersionResource{Group: k.group, Version: k.version, Resource: k.resource}
	if gvr.Version == "" {
		gvr.Version = "v1"
	}
	k.informer = metadatainformer.NewFilteredMetadataInformer(c.md, gvr, "", 0, cache.Indexers{}, nil).Informer()
	k.meta = c.md.Resource(gvr)
	if err := gc.watch(k); err != nil {
		return err
	}
	c.builtin = append(c.builtin, k)
	gc.kinds = append(gc.kinds, k)
	return nil
}
