package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// LoadBalancerClass is the spec.loadBalancerClass of the Services the
// service load balancer serves, besides those without a class.
const LoadBalancerClass = "minik.dev/servicelb"

// excludeFromLBLabel keeps a node out of every load balancer, as in
// Kubernetes.
const excludeFromLBLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// ServiceLBOptions tunes a ServiceLBController.
type ServiceLBOptions struct{}

// ServiceLBController is minik's load balancer for Services of type
// LoadBalancer, in the manner of k3s' servicelb without its pods: every
// node's proxy already serves a Service's port at the Service's ingress
// IPs, so the controller only publishes, in status.loadBalancer.ingress,
// the address of every Ready node (its ExternalIP, else its InternalIP).
// It keeps the list in step with the nodes, and clears it when a Service
// stops being a LoadBalancer. Services with a loadBalancerClass other than
// LoadBalancerClass belong to another implementation and are left alone.
type ServiceLBController struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	lg       *slog.Logger
	loop     *loop
}

// NewServiceLBController returns a ServiceLBController fed by the given
// informers. lg may be nil.
func NewServiceLBController(client kubernetes.Interface, services coreinformers.ServiceInformer, nodes coreinformers.NodeInformer, lg *slog.Logger, _ ServiceLBOptions) (*ServiceLBController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "servicelb-controller")
	c := &ServiceLBController{client: client, services: services.Lister(), nodes: nodes.Lister(), lg: lg}
	c.loop = newLoop("servicelb", lg, c.sync)
	enqueue := func(obj any) {
		if key, ok := keyOf(obj); ok {
			c.loop.add(key)
		}
	}
	err := c.loop.watch(
		handler{services.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: c.serviceUpdated,
			// A load balancer going away frees its ports for others.
			DeleteFunc: func(any) { c.nodesChanged() },
		}},
		handler{nodes.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.nodesChanged() },
			UpdateFunc: c.nodeUpdated,
			DeleteFunc: func(any) { c.nodesChanged() },
		}},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs load balancer Services with workers goroutines until ctx
// ends, and returns after they have stopped.
func (c *ServiceLBController) Run(ctx context.Context, workers int) error {
	return c.loop.run(ctx, workers)
}

// nodeUpdated enqueues the load balancers when a node's part in them
// changed; heartbeats and other status updates leave them alone.
func (c *ServiceLBController) nodeUpdated(oldObj, newObj any) {
	o, ok1 := oldObj.(*corev1.Node)
	n, ok2 := newObj.(*corev1.Node)
	if ok1 && ok2 && nodeIngress(o) == nodeIngress(n) {
		return
	}
	c.nodesChanged()
}

// serviceUpdated enqueues the Service, and every load balancer when its
// type or ports changed (which may free or take ports another one waits
// for).
func (c *ServiceLBController) serviceUpdated(oldObj, newObj any) {
	o, ok1 := oldObj.(*corev1.Service)
	n, ok2 := newObj.(*corev1.Service)
	if ok1 && ok2 && (o.Spec.Type != n.Spec.Type || !apiequality.Semantic.DeepEqual(o.Spec.Ports, n.Spec.Ports)) {
		c.nodesChanged()
		return
	}
	if key, ok := keyOf(newObj); ok {
		c.loop.add(key)
	}
}

// nodesChanged enqueues every Service that has or may need ingress.
func (c *ServiceLBController) nodesChanged() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer || len(s.Status.LoadBalancer.Ingress) > 0 {
			if key, ok := keyOf(s); ok {
				c.loop.add(key)
			}
		}
	}
}

// ours reports whether the controller serves svc's class.
func ours(svc *corev1.Service) bool {
	return svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == LoadBalancerClass
}

// sync makes the ingress of the Service key match the Ready nodes.
func (c *ServiceLBController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ours(svc) {
		return nil
	}
	var want []corev1.LoadBalancerIngress
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		holder, err := c.portHolder(svc)
		if err != nil {
			return err
		}
		if holder != nil {
			// Every node's address serves the older Service at that
			// port: this one waits without ingress, as a k3s servicelb
			// pod waits for its host port.
			c.lg.Info("load balancer port taken by another service", "service", key, "holder", holder.Namespace+"/"+holder.Name)
		} else if want, err = c.ingress(); err != nil {
			return err
		}
	}
	if apiequality.Semantic.DeepEqual(want, svc.Status.LoadBalancer.Ingress) {
		return nil
	}
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = want
	_, err = c.client.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		c.lg.Debug("load balancer ingress updated", "service", key, "ingress", len(want))
	}
	return err
}

// lbPort is a port a load balancer takes on every node address.
type lbPort struct {
	proto corev1.Protocol
	port  int32
}

func lbPorts(svc *corev1.Service) []lbPort {
	out := make([]lbPort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, lbPort{proto, p.Port})
	}
	return out
}

// portHolder returns the load balancer Service that holds one of svc's
// ports, or nil. Since the ingress addresses are the nodes' own, two
// Services cannot share a port: load balancers take their ports oldest
// first (by creation, then namespace and name), and one that finds a port
// taken gets no ingress and takes none.
func (c *ServiceLBController) portHolder(svc *corev1.Service) (*corev1.Service, error) {
	all, err := c.services.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	lbs := slices.DeleteFunc(all, func(s *corev1.Service) bool {
		return s.Spec.Type != corev1.ServiceTypeLoadBalancer || !ours(s) || s.DeletionTimestamp != nil
	})
	slices.SortFunc(lbs, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	held := map[lbPort]*corev1.Service{}
	for _, s := range lbs {
		if s.Namespace == svc.Namespace && s.Name == svc.Name {
			break
		}
		ports := lbPorts(s)
		if slices.ContainsFunc(ports, func(p lbPort) bool { return held[p] != nil }) {
			continue
		}
		for _, p := range ports {
			held[p] = s
		}
	}
	for _, p := range lbPorts(svc) {
		if h := held[p]; h != nil {
			return h, nil
		}
	}
	return nil, nil
}

// ingress returns one ingress point per Ready node, sorted by address, or
// nil when there is none.
func (c *ServiceLBController) ingress() ([]corev1.LoadBalancerIngress, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	for _, n := range nodes {
		if ip := nodeIngress(n); ip.IsValid() {
			ips = append(ips, ip)
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	var out []corev1.LoadBalancerIngress
	vip := corev1.LoadBalancerIPModeVIP
	for _, ip := range ips {
		out = append(out, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &vip})
	}
	return out, nil
}

// nodeIngress returns the address node contributes to load balancers: its
// ExternalIP, else its InternalIP; none unless it is Ready, not being
// deleted and not excluded by label.
func nodeIngress(n *corev1.Node) netip.Addr {
	if n.DeletionTimestamp != nil || !nodeReady(n) {
		return netip.Addr{}
	}
	if _, ok := n.Labels[excludeFromLBLabel]; ok {
		return netip.Addr{}
	}
	rank := func(t corev1.NodeAddressType) int {
		switch t {
		case corev1.NodeExternalIP:
			return 0
		case corev1.NodeInternalIP:
			return 1
		}
		return 2
	}
	best, bestRank := netip.Addr{}, 2
	for _, a := range n.Status.Addresses {
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if r := rank(a.Type); r < bestRank {
			best, bestRank = ip.Unmap(), r
		}
	}
	return best
}

func nodeReady(n *corev1.Node) bool {
	i := slices.IndexFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady })
	return i >= 0 && n.Status.Conditions[i].Status == corev1.ConditionTrue
}

// serviceLBRun builds a ServiceLBController on factory and returns its Run
// func, or one that returns the error that kept it from being built.
func serviceLBRun(client kubernetes.Interface, factory informers.SharedInformerFactory, lg *slog.Logger) func(context.Context, int) error {
	core := factory.Core().V1()
	c, err := NewServiceLBController(client, core.Services(), core.Nodes(), lg, ServiceLBOptions{})
	if err != nil {
		return func(context.Context, int) error { return fmt.Errorf("servicelb: %w", err) }
	}
	return c.Run
}
