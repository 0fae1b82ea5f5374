package controllers

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The Service through which pods reach the API: default/kubernetes, port
// 443 named https.
const (
	APIServiceNamespace = metav1.NamespaceDefault
	APIServiceName      = "kubernetes"
	APIServicePort      = 443
	apiServicePortName  = "https"
	apiServiceKey       = APIServiceNamespace + "/" + APIServiceName
)

// apiServiceLabels are the labels Kubernetes gives the Service.
var apiServiceLabels = map[string]string{"component": "apiserver", "provider": "kubernetes"}

// apiEndpointsLabels keep an EndpointSlice mirror from copying these
// Endpoints: the API's slices are written by whoever writes the
// Endpoints.
var apiEndpointsLabels = map[string]string{skipMirrorLabel: "true"}

const skipMirrorLabel = "endpointslice.kubernetes.io/skip-mirror"

// APIServers is the set of live API servers.
type APIServers interface {
	// Addresses returns the advertised host:port of each live server.
	// The slice is the caller's. Safe for concurrent use.
	Addresses() []string
	// Changed returns a channel closed when Addresses next changes.
	Changed() <-chan struct{}
}

// APIServiceOptions configures an APIServiceController.
type APIServiceOptions struct {
	// ClusterIP is the Service's address, the first of the service CIDR
	// (which the allocator keeps for it).
	ClusterIP string
	// Port is the port the API servers listen on, the Service's target.
	Port int32
	// Servers are the live API servers, the Endpoints' addresses.
	Servers APIServers
}

// errAPIServiceOptions is returned for options without an IP, port or
// server set.
var errAPIServiceOptions = errors.New("kubernetes service: cluster IP, port and servers are required")

// APIServiceController keeps the Service default/kubernetes (ClusterIP
// type at ClusterIP, port 443 "https" → Port) and its Endpoints, which
// list the live API servers' advertised addresses with their ports. It
// runs on the leader only: one writer of the Endpoints. Addresses an
// Endpoints may not hold (loopback, link-local, not an IP) are left out.
type APIServiceController struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	opts      APIServiceOptions
	lg        *slog.Logger
	loop      *loop
}

// NewAPIServiceController returns an APIServiceController fed by the
// given informers. lg may be nil.
func NewAPIServiceController(client kubernetes.Interface, services coreinformers.ServiceInformer, endpoints coreinformers.EndpointsInformer, lg *slog.Logger, opts APIServiceOptions) (*APIServiceController, error) {
	if opts.ClusterIP == "" || opts.Port <= 0 || opts.Servers == nil {
		return nil, errAPIServiceOptions
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "kubernetes-service")
	c := &APIServiceController{
		client: client, services: services.Lister(), endpoints: endpoints.Lister(), opts: opts, lg: lg,
	}
	c.loop = newLoop("kubernetes-service", lg, c.sync)
	changed := func(obj any) {
		if key, ok := keyOf(obj); ok && key == apiServiceKey {
			c.loop.add(key)
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: changed, UpdateFunc: func(_, o any) { changed(o) }, DeleteFunc: changed}
	err := c.loop.watch(handler{services.Informer(), h}, handler{endpoints.Informer(), h})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run keeps the Service and its Endpoints until ctx ends, and returns
// after its goroutines have stopped.
func (c *APIServiceController) Run(ctx context.Context, workers int) error {
	// Take the change channel before the first sync reads the servers,
	// so that no change falls between the two.
	changed := c.opts.Servers.Changed()
	var wg sync.WaitGroup
	wg.Go(func() { c.followServers(ctx, changed) })
	defer wg.Wait()
	c.loop.add(apiServiceKey)
	return c.loop.run(ctx, workers)
}

// followServers enqueues the Service at every change of the server set,
// the first being the closing of changed.
func (c *APIServiceController) followServers(ctx context.Context, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			changed = c.opts.Servers.Changed()
			c.loop.add(apiServiceKey)
		}
	}
}

func (c *APIServiceController) sync(ctx context.Context, _ string) error {
	if err := c.syncService(ctx); err != nil {
		return err
	}
	if err := c.syncEndpoints(ctx); err != nil {
		return err
	}
	return c.syncEndpointSlices(ctx)
}

// syncService creates the Service, or puts back what it must have. Its
// cluster IP cannot change; a Service someone recreated elsewhere keeps
// its address.
func (c *APIServiceController) syncService(ctx context.Context) error {
	want := c.desiredService()
	cur, err := c.services.Services(APIServiceNamespace).Get(APIServiceName)
	if apierrors.IsNotFound(err) {
		_, err = c.client.CoreV1().Services(APIServiceNamespace).Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	if cur.Spec.Type == want.Spec.Type && len(cur.Spec.Selector) == 0 && apiequality.Semantic.DeepEqual(cur.Spec.Ports, want.Spec.Ports) {
		return nil
	}
	svc := cur.DeepCopy()
	svc.Spec.Type, svc.Spec.Selector, svc.Spec.Ports = want.Spec.Type, nil, want.Spec.Ports
	_, err = c.client.CoreV1().Services(APIServiceNamespace).Update(ctx, svc, metav1.UpdateOptions{})
	return err
}

func (c *APIServiceController) desiredService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Namespace: APIServiceNamespace, Labels: maps(apiServiceLabels)},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			ClusterIP:       c.opts.ClusterIP,
			ClusterIPs:      []string{c.opts.ClusterIP},
			SessionAffinity: corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{{
				Name: apiServicePortName, Protocol: corev1.ProtocolTCP, Port: APIServicePort,
				TargetPort: intstr.FromInt32(c.opts.Port),
			}},
		},
	}
}

// syncEndpoints writes the live servers into the Endpoints.
func (c *APIServiceController) syncEndpoints(ctx context.Context) error {
	subsets := serverSubsets(c.opts.Servers.Addresses())
	cur, err := c.endpoints.Endpoints(APIServiceNamespace).Get(APIServiceName)
	if apierrors.IsNotFound(err) {
		ep := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Namespace: APIServiceNamespace, Labels: maps(apiEndpointsLabels)},
			Subsets:    subsets,
		}
		_, err = c.client.CoreV1().Endpoints(APIServiceNamespace).Create(ctx, ep, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	if apiequality.Semantic.DeepEqual(cur.Subsets, subsets) && cur.Labels[skipMirrorLabel] == "true" {
		return nil
	}
	ep := cur.DeepCopy()
	ep.Subsets = subsets
	if ep.Labels == nil {
		ep.Labels = map[string]string{}
	}
	ep.Labels[skipMirrorLabel] = "true"
	_, err = c.client.CoreV1().Endpoints(APIServiceNamespace).Update(ctx, ep, metav1.UpdateOptions{})
	return err
}

// serverSubsets turns host:port addresses into Endpoints subsets, one per
// port, sorted by port, with addresses sorted; nil when none is usable.
func serverSubsets(addrs []string) []corev1.EndpointSubset {
	byPort := map[int32][]string{}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(host)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil || n == 0 || !endpointIP(ip) {
			continue
		}
		byPort[int32(n)] = append(byPort[int32(n)], ip.String())
	}
	var out []corev1.EndpointSubset
	for port, ips := range byPort {
		slices.Sort(ips)
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: apiServicePortName, Port: port, Protocol: corev1.ProtocolTCP}}}
		for _, ip := range slices.Compact(ips) {
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
		}
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b corev1.EndpointSubset) int { return cmp.Compare(a.Ports[0].Port, b.Ports[0].Port) })
	return out
}

// endpointIP reports whether ip may be an Endpoints address: traffic to
// it must leave the pod.
func endpointIP(ip netip.Addr) bool {
	return !ip.IsUnspecified() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() && !ip.IsMulticast()
}
