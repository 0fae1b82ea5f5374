package controllers

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Managers of EndpointSlices, in the endpointslice.kubernetes.io/managed-by
// label, as in Kubernetes.
const (
	// SliceManagerPods marks slices built from the pods a Service selects.
	SliceManagerPods = "endpointslice-controller.k8s.io"
	// SliceManagerMirror marks slices mirrored from the Endpoints of a
	// Service without selector.
	SliceManagerMirror = "endpointslicemirroring-controller.k8s.io"
)

// Label that keeps an Endpoints from being mirrored into slices.
const labelSkipMirror = "endpointslice.kubernetes.io/skip-mirror"

// Endpoints per slice, as Kubernetes' defaults: --max-endpoints-per-slice
// for slices built from pods, --mirroring-max-endpoints-per-subset for
// mirrored ones.
const (
	defaultMaxEndpointsPerSlice = 100
	mirrorMaxEndpointsPerSlice  = 1000
)

// EndpointSliceOptions tunes an EndpointSliceController.
type EndpointSliceOptions struct {
	// MaxEndpointsPerSlice caps the endpoints of one slice built from pods
	// (default 100).
	MaxEndpointsPerSlice int
}

// EndpointSliceController keeps the EndpointSlices of every Service: for
// a Service with a selector, slices (managed by SliceManagerPods, owned by
// the Service) listing the pods the selector matches with their
// ready/serving/terminating conditions; for a Service without selector,
// slices (managed by SliceManagerMirror, owned by the Endpoints) mirroring
// the Endpoints its user wrote. Slices are grouped by address family and
// resolved ports, at most MaxEndpointsPerSlice endpoints each. One sync
// per Service handles both, so a Service that gains or loses its selector
// swaps one kind of slices for the other. Slices of other managers are
// left alone.
type EndpointSliceController struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	nodes     corelisters.NodeLister
	slices    discoverylisters.EndpointSliceLister
	maxPer    int
	tracker   *sliceTracker
	lg        *slog.Logger
	loop      *loop
}

// NewEndpointSliceController returns an EndpointSliceController fed by
// the given informers. lg may be nil.
func NewEndpointSliceController(client kubernetes.Interface, services coreinformers.ServiceInformer, pods coreinformers.PodInformer,
	endpoints coreinformers.EndpointsInformer, nodes coreinformers.NodeInformer, slices discoveryinformers.EndpointSliceInformer,
	lg *slog.Logger, opts EndpointSliceOptions) (*EndpointSliceController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.MaxEndpointsPerSlice <= 0 {
		opts.MaxEndpointsPerSlice = defaultMaxEndpointsPerSlice
	}
	lg = lg.With("component", "endpointslice-controller")
	c := &EndpointSliceController{
		client: client, services: services.Lister(), pods: pods.Lister(), endpoints: endpoints.Lister(),
		nodes: nodes.Lister(), slices: slices.Lister(), maxPer: opts.MaxEndpointsPerSlice,
		tracker: newSliceTracker(), lg: lg,
	}
	c.loop = newLoop("endpointslice", lg, c.sync)
	enqueue := func(obj any) {
		if key, ok := keyOf(obj); ok {
			c.loop.add(key)
		}
	}
	err := c.loop.watch(
		handler{services.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue}},
		handler{pods.Informer(), selectingServices{c.services, c.loop.add}.handlers()},
		handler{endpoints.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue}},
		handler{nodes.Informer(), cache.ResourceEventHandlerFuncs{}},
		handler{slices.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.sliceChanged, UpdateFunc: func(_, o any) { c.sliceChanged(o) }, DeleteFunc: c.sliceDeleted}},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs slices with workers goroutines until ctx ends, and returns
// after they have stopped.
func (c *EndpointSliceController) Run(ctx context.Context, workers int) error {
	return c.loop.run(ctx, workers)
}

// sliceChanged enqueues the Service of a slice this controller manages,
// so an edited or deleted slice is rewritten.
func (c *EndpointSliceController) sliceChanged(obj any) {
	s, ok := untombstone(obj).(*discoveryv1.EndpointSlice)
	if !ok || !managedHere(s) {
		return
	}
	if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
		c.loop.add(s.Namespace + "/" + svc)
	}
}

func (c *EndpointSliceController) sliceDeleted(obj any) {
	if s, ok := untombstone(obj).(*discoveryv1.EndpointSlice); ok {
		c.tracker.observedDeletion(s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName], s.Name)
	}
	c.sliceChanged(obj)
}

func managedHere(s *discoveryv1.EndpointSlice) bool {
	m := s.Labels[discoveryv1.LabelManagedBy]
	return m == SliceManagerPods || m == SliceManagerMirror
}

// sync writes the slices of one Service: built from its pods, mirrored
// from its Endpoints, or none.
func (c *EndpointSliceController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	existing, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return err
	}
	if c.tracker.stale(key, existing) {
		// Our last writes have not reached the cache yet; their events
		// enqueue the Service again.
		return nil
	}
	want, err := c.desired(ns, name)
	if err != nil {
		return err
	}
	return c.reconcile(ctx, key, ns, want, existing)
}

// desired returns the slices the Service ns/name should have (without
// names), nil for none (no Service, an ExternalName one, or one without
// selector whose Endpoints are missing or not to be mirrored).
func (c *EndpointSliceController) desired(ns, name string) ([]*discoveryv1.EndpointSlice, error) {
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, nil // a DNS name, no endpoints
	}
	if len(svc.Spec.Selector) > 0 {
		pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
		if err != nil {
			return nil, err
		}
		return podSlices(svc, podEndpoints(svc, pods, true), c.zoneOf, c.maxPer), nil
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ep.Labels[labelSkipMirror] == "true" {
		return nil, nil
	}
	return mirrorSlices(svc, ep, mirrorMaxEndpointsPerSlice), nil
}

// zoneOf returns the zone label of a node, "" when unknown.
func (c *EndpointSliceController) zoneOf(node string) string {
	if node == "" {
		return ""
	}
	n, err := c.nodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}
