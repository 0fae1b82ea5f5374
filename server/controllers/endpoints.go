package controllers

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// EndpointsOptions tunes an EndpointsController.
type EndpointsOptions struct{}

// EndpointsController keeps, for every Service with a selector, an
// Endpoints object of the same name listing the addresses of the pods the
// selector matches: ready pods under addresses, others under
// notReadyAddresses. Pods without an IP, finished pods and pods being
// deleted are left out. Endpoints of Services without a selector belong to
// their users and are left alone.
type EndpointsController struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	lg        *slog.Logger
	loop      *loop
}

// NewEndpointsController returns an EndpointsController fed by the given
// informers. lg may be nil.
func NewEndpointsController(client kubernetes.Interface, services coreinformers.ServiceInformer, pods coreinformers.PodInformer, endpoints coreinformers.EndpointsInformer, lg *slog.Logger, _ EndpointsOptions) (*EndpointsController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "endpoints-controller")
	c := &EndpointsController{
		client:    client,
		services:  services.Lister(),
		pods:      pods.Lister(),
		endpoints: endpoints.Lister(),
		lg:        lg,
	}
	c.loop = newLoop("endpoints", lg, c.sync)
	enqueue := func(obj any) {
		if key, ok := keyOf(obj); ok {
			c.loop.add(key)
		}
	}
	err := c.loop.watch(
		handler{services.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue}},
		handler{pods.Informer(), selectingServices{c.services, c.loop.add}.handlers()},
		// A deleted or edited Endpoints is rewritten from its Service.
		handler{endpoints.Informer(), cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, o any) { c.endpointsChanged(o) }, DeleteFunc: c.endpointsChanged}},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs endpoints with workers goroutines until ctx ends, and returns
// after they have stopped.
func (c *EndpointsController) Run(ctx context.Context, workers int) error {
	return c.loop.run(ctx, workers)
}

// endpointsChanged enqueues the Service of an Endpoints, if there is one:
// Endpoints without a Service are not the controller's.
func (c *EndpointsController) endpointsChanged(obj any) {
	key, ok := keyOf(obj)
	if !ok {
		return
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	if _, err := c.services.Services(ns).Get(name); err == nil {
		c.loop.add(key)
	}
}

// selectingServices turns pod events into the keys of the Services whose
// selector matches the pod (before and after a label change), for the
// controllers that keep a Service's endpoints.
type selectingServices struct {
	services corelisters.ServiceLister
	add      func(key string)
}

func (s selectingServices) handlers() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: s.podChanged, UpdateFunc: s.podUpdated, DeleteFunc: s.podChanged}
}

func (s selectingServices) podChanged(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	svcs, err := s.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			s.add(svc.Namespace + "/" + svc.Name)
		}
	}
}

func (s selectingServices) podUpdated(oldObj, obj any) {
	old, pod := oldObj.(*corev1.Pod), obj.(*corev1.Pod)
	if old.ResourceVersion == pod.ResourceVersion {
		return
	}
	s.podChanged(pod)
	if !labels.Equals(old.Labels, pod.Labels) {
		s.podChanged(old)
	}
}

// sync writes the Endpoints of one Service, or deletes it when the
// Service is gone.
func (c *EndpointsController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteEndpoints(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	subsets := endpointSubsets(svc, pods)
	cur, err := c.endpoints.Endpoints(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return c.createEndpoints(ctx, svc, subsets)
	case err != nil:
		return err
	}
	if apiequality.Semantic.DeepEqual(normalSubsets(cur.DeepCopy().Subsets), subsets) && apiequality.Semantic.DeepEqual(cur.Labels, svc.Labels) {
		return nil
	}
	out := cur.DeepCopy()
	out.Labels = maps(svc.Labels)
	out.Subsets = subsets
	_, err = c.client.CoreV1().Endpoints(ns).Update(ctx, out, metav1.UpdateOptions{})
	return err
}

func (c *EndpointsController) createEndpoints(ctx context.Context, svc *corev1.Service, subsets []corev1.EndpointSubset) error {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: maps(svc.Labels)},
		Subsets:    subsets,
	}
	_, err := c.client.CoreV1().Endpoints(svc.Namespace).Create(ctx, ep, metav1.CreateOptions{})
	return err
}

func (c *EndpointsController) deleteEndpoints(ctx context.Context, ns, name string) error {
	if _, err := c.endpoints.Endpoints(ns).Get(name); apierrors.IsNotFound(err) {
		return nil
	}
	err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
