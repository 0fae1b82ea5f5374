package controllers

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	networkinginformers "k8s.io/client-go/informers/networking/v1"
	"k8s.io/client-go/kubernetes"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
)

// DefaultServiceCIDRName names the ServiceCIDR that publishes the range
// the API server takes Service cluster IPs from, as in Kubernetes.
const DefaultServiceCIDRName = "kubernetes"

// Reasons of the default ServiceCIDR's Ready condition.
const (
	serviceCIDRReady    = "ServiceCIDRReady"
	serviceCIDRMismatch = "ServiceCIDRMismatch"
)

// errNoServiceCIDR is returned by NewDefaultServiceCIDRController
// without a range.
var errNoServiceCIDR = errors.New("default service CIDR: no range")

// DefaultServiceCIDRController keeps the ServiceCIDR "kubernetes": it
// creates it with the server's service range, puts it back when it is
// deleted, and marks it Ready. A "kubernetes" ServiceCIDR someone made
// with other ranges is kept, marked not Ready. It runs on the leader
// only.
type DefaultServiceCIDRController struct {
	client kubernetes.Interface
	cidrs  networkinglisters.ServiceCIDRLister
	cidr   string
	lg     *slog.Logger
	loop   *loop
}

// NewDefaultServiceCIDRController returns a controller publishing cidr
// (the server's --service-cidr) fed by cidrs, which may be narrowed to
// the ServiceCIDR named kubernetes. lg may be nil.
func NewDefaultServiceCIDRController(client kubernetes.Interface, cidrs networkinginformers.ServiceCIDRInformer, cidr string, lg *slog.Logger) (*DefaultServiceCIDRController, error) {
	if cidr == "" {
		return nil, errNoServiceCIDR
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "default-service-cidr")
	c := &DefaultServiceCIDRController{client: client, cidrs: cidrs.Lister(), cidr: cidr, lg: lg}
	c.loop = newLoop("default-service-cidr", lg, c.sync)
	changed := func(obj any) {
		if key, ok := keyOf(obj); ok && key == DefaultServiceCIDRName {
			c.loop.add(key)
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: changed, UpdateFunc: func(_, o any) { changed(o) }, DeleteFunc: changed}
	if err := c.loop.watch(handler{cidrs.Informer(), h}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run keeps the ServiceCIDR until ctx ends, and returns after its
// workers have stopped.
func (c *DefaultServiceCIDRController) Run(ctx context.Context, workers int) error {
	c.loop.add(DefaultServiceCIDRName)
	return c.loop.run(ctx, workers)
}

func (c *DefaultServiceCIDRController) sync(ctx context.Context, _ string) error {
	cur, err := c.cidrs.Get(DefaultServiceCIDRName)
	if apierrors.IsNotFound(err) {
		want := &networkingv1.ServiceCIDR{
			ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceCIDRName},
			Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{c.cidr}},
		}
		cur, err = c.client.NetworkingV1().ServiceCIDRs().Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // the informer brings it
		}
		if err == nil {
			c.lg.Info("created the default service cidr", "cidr", c.cidr)
		}
	}
	if err != nil {
		return err
	}
	if cur.DeletionTimestamp != nil {
		return nil // recreated once gone
	}
	cond := metav1.Condition{
		Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionTrue,
		Reason: serviceCIDRReady, Message: "Kubernetes default Service CIDR is ready",
	}
	if !slices.Contains(cur.Spec.CIDRs, c.cidr) {
		cond.Status, cond.Reason = metav1.ConditionFalse, serviceCIDRMismatch
		cond.Message = "does not hold the range Service cluster IPs come from: " + c.cidr
	}
	if old := meta.FindStatusCondition(cur.Status.Conditions, cond.Type); old != nil &&
		old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message {
		return nil
	}
	upd := cur.DeepCopy()
	meta.SetStatusCondition(&upd.Status.Conditions, cond)
	_, err = c.client.NetworkingV1().ServiceCIDRs().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}
