package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// The garbage collector follows the kinds of established
// CustomResourceDefinitions too, as owners and as dependents: it watches
// the definitions and, for each, the metadata of its objects in the
// storage version, and reads, patches and deletes them through the
// metadata client. A reference to a custom kind matches it in any version
// of its group.

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// gcCustom is what the garbage collector needs to follow custom kinds.
type gcCustom struct {
	md   metadata.Interface
	crds cache.SharedIndexInformer
	// builtin are the built-in kinds followed by their metadata
	// (gc_builtin.go); set before Run.
	builtin []*gcKind

	mu     sync.Mutex
	ctx    context.Context    // Run's; nil before Run. Guarded by mu.
	byName map[string]*gcKind // followed definitions by name; guarded by mu
	wg     sync.WaitGroup     // the informers of followed kinds
}

// newGCCustom prepares following custom kinds over cfg.
func newGCCustom(cfg *rest.Config) (*gcCustom, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	crds := dynamicinformer.NewFilteredDynamicInformer(dyn, crdGVR, "", 0, cache.Indexers{}, nil).Informer()
	return &gcCustom{md: md, crds: crds, byName: map[string]*gcKind{}}, nil
}

// watchCRDs makes gc follow the custom kinds c's informer reports.
func (gc *GarbageCollector) watchCRDs(c *gcCustom) error {
	reg, err := c.crds.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { gc.followCRD(obj) },
		UpdateFunc: func(_, obj any) { gc.followCRD(obj) },
		DeleteFunc: func(obj any) {
			if u, ok := untombstone(obj).(*unstructured.Unstructured); ok {
				gc.unfollow(u.GetName())
			}
		},
	})
	if err != nil {
		return err
	}
	gc.synced = append(gc.synced, reg.HasSynced)
	return nil
}

// runCustom starts the definitions' informer and those of the built-in
// kinds followed by metadata; it returns at once. The
// informers started stop when ctx ends; waitCustom waits for them.
func (gc *GarbageCollector) runCustom(ctx context.Context) {
	c := gc.custom
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	for _, inf := range append([]cache.SharedIndexInformer{c.crds}, informersOf(c.builtin)...) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			inf.Run(ctx.Done())
		}()
	}
}

func informersOf(kinds []*gcKind) []cache.SharedIndexInformer {
	out := make([]cache.SharedIndexInformer, len(kinds))
	for i, k := range kinds {
		out[i] = k.informer
	}
	return out
}

// followCRD starts following the kind of an established definition, or
// follows it anew if its storage version or names changed.
func (gc *GarbageCollector) followCRD(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd) != nil || !established(crd) {
		return
	}
	want := customKind(crd)
	c := gc.custom
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return
	}
	if old, ok := c.byName[crd.Name]; ok {
		if old.sameAs(want) {
			return
		}
		gc.unfollowLocked(crd.Name)
	}
	gvr := schema.GroupVersionResource{Group: want.group, Version: want.version, Resource: want.resource}
	want.informer = metadatainformer.NewFilteredMetadataInformer(c.md, gvr, "", 0, cache.Indexers{}, nil).Informer()
	want.meta = c.md.Resource(gvr)
	if err := gc.watch(want); err != nil {
		gc.lg.Warn("following a custom kind", "crd", crd.Name, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	want.stop = cancel
	c.byName[crd.Name] = want
	gc.kindsMu.Lock()
	gc.kinds = append(gc.kinds, want)
	gc.kindsMu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		want.informer.Run(ctx.Done())
	}()
	gc.lg.Info("following custom kind", "crd", crd.Name, "version", want.version)
}

func (gc *GarbageCollector) unfollow(name string) {
	gc.custom.mu.Lock()
	defer gc.custom.mu.Unlock()
	gc.unfollowLocked(name)
}

// unfollowLocked stops following the kind of definition name.
// gc.custom.mu must be held.
func (gc *GarbageCollector) unfollowLocked(name string) {
	k, ok := gc.custom.byName[name]
	if !ok {
		return
	}
	delete(gc.custom.byName, name)
	k.stop()
	gc.kindsMu.Lock()
	gc.kinds = slices.DeleteFunc(gc.kinds, func(x *gcKind) bool { return x == k })
	gc.kindsMu.Unlock()
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// customKind is the kind crd defines, in its storage version.
func customKind(crd *apiextensionsv1.CustomResourceDefinition) *gcKind {
	k := &gcKind{
		group: crd.Spec.Group, kind: crd.Status.AcceptedNames.Kind, resource: crd.Status.AcceptedNames.Plural,
		namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
	}
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			k.version = v.Name
		}
	}
	return k
}

// sameAs reports whether k and o follow the same resource.
func (k *gcKind) sameAs(o *gcKind) bool {
	return k.group == o.group && k.version == o.version && k.resource == o.resource && k.kind == o.kind && k.namespaced == o.namespaced
}

// metaClient is the metadata client of a custom kind's objects in ns.
func (k *gcKind) metaClient(ns string) metadata.ResourceInterface {
	if k.namespaced {
		return k.meta.Namespace(ns)
	}
	return k.meta
}

// patchCustomMeta merge-patches the metadata of a custom object, with its
// uid and resourceVersion as preconditions.
func patchCustomMeta(ctx context.Context, k *gcKind, obj metav1.Object, f metaPatchFields) error {
	f.UID, f.ResourceVersion = obj.GetUID(), obj.GetResourceVersion()
	data, err := json.Marshal(metaPatch{Metadata: f})
	if err != nil {
		return err
	}
	_, err = k.metaClient(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.MergePatchType, data, metav1.PatchOptions{})
	return err
}
