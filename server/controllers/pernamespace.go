package controllers

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// perNamespace is the loop of a controller that keeps one object of a
// fixed name in every namespace that is not being deleted: the default
// ServiceAccount, the root CA ConfigMap. Keys are namespace names; a new
// or changed namespace, and a change or deletion of the object, enqueue
// the namespace, and ensure puts the object back as it should be.
type perNamespace struct {
	object     string // the object's name
	namespaces corelisters.NamespaceLister
	ensure     func(ctx context.Context, namespace string) error
	loop       *loop
}

// newPerNamespace wires a perNamespace loop named name on the namespace
// informer and the informer of the kept objects (which may be narrowed
// to objects named object, to keep its cache small).
func newPerNamespace(name, object string, namespaces coreinformers.NamespaceInformer, objects cache.SharedIndexInformer, lg *slog.Logger, ensure func(context.Context, string) error) (*perNamespace, error) {
	p := &perNamespace{object: object, namespaces: namespaces.Lister(), ensure: ensure}
	p.loop = newLoop(name, lg, p.sync)
	enqueueNS := func(obj any) {
		if ns, ok := untombstone(obj).(*corev1.Namespace); ok {
			p.loop.add(ns.Name)
		}
	}
	objectChanged := func(obj any) {
		m, err := meta.Accessor(untombstone(obj))
		if err == nil && m.GetName() == object {
			p.loop.add(m.GetNamespace())
		}
	}
	err := p.loop.watch(
		handler{namespaces.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: enqueueNS, UpdateFunc: func(_, o any) { enqueueNS(o) }}},
		handler{objects, cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, o any) { objectChanged(o) }, DeleteFunc: objectChanged}},
	)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// run syncs namespaces with workers goroutines until ctx ends.
func (p *perNamespace) run(ctx context.Context, workers int) error {
	return p.loop.run(ctx, workers)
}

// sync ensures the object in one namespace, unless the namespace is gone
// or going: its content is being deleted, and creates there are refused.
func (p *perNamespace) sync(ctx context.Context, namespace string) error {
	ns, err := p.namespaces.Get(namespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	err = p.ensure(ctx, namespace)
	if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
		// Another writer was first, or the namespace went meanwhile: the
		// informers bring the next state either way.
		return nil
	}
	return err
}
