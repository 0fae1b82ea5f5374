package servicenet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/network"
)

// Service networking on the node. The session hands every change of the
// cluster's services, EndpointSlices and nodes to a Sync, whose one
// goroutine turns the latest view into the proxy's iptables rules, the
// host-gw routes to other nodes' pods and the records of the node's DNS
// server.
//
// Cluster DNS is node-local: every node answers on its bridge gateway (the
// first address of its podCIDR), and the proxy sends the fixed cluster DNS
// address (Config.ClusterDNS, 10.43.0.10) there, as the Service
// kube-system/kube-dns. Pods thus reach the DNS server of their own node,
// which needs no Service object in the store and keeps working while the
// server is away.

// Delays of the sync loop: changes arriving within syncDelay of the first
// are applied together; a failed sync is retried after retryDelay.
const (
	syncDelay  = 50 * time.Millisecond
	retryDelay = time.Second
)

// dnsServiceNamespace and dnsServiceName name the cluster DNS service.
const (
	dnsServiceNamespace = "kube-system"
	dnsServiceName      = "kube-dns"
)

// Config is what a Sync needs to know of its node.
type Config struct {
	// NodeName is the node's name: it routes to every other node's pods.
	NodeName string
	// PodCIDR is the node's; its first address is the bridge's, where
	// the node's DNS server listens. ClusterCIDR holds every node's.
	PodCIDR, ClusterCIDR netip.Prefix
	// ClusterDNS is the cluster DNS address pods are given, an IPv4
	// address; the proxy sends it to the node's DNS server.
	ClusterDNS netip.Addr
	// ClusterDomain is the DNS domain of services and pods
	// ("cluster.local" when empty).
	ClusterDomain string
	Logger        *slog.Logger
}

// Kind is a kind of object a Sync reads.
type Kind uint8

// The kinds of Objects.
const (
	KindService       Kind = iota + 1 // core/v1 Service
	KindEndpointSlice                 // discovery.k8s.io/v1 EndpointSlice
	KindNode                          // core/v1 Node, trimmed (see api/node.proto)
	// KindEndpoints is core/v1 Endpoints, which a server of an earlier
	// version sends instead of EndpointSlices; read as a slice of the
	// Service of the same name.
	KindEndpoints
)

// Key names an object of a kind; a Node has no namespace.
type Key struct {
	Kind            Kind
	Namespace, Name string
}

// Objects are the cluster's services, EndpointSlices and nodes as the
// session carries them (see api.DecodeObject).
type Objects map[Key][]byte

// Sync applies the session's view of services, EndpointSlices and nodes
// to the node. Update may be called from any goroutine; Run owns the
// rest.
type Sync struct {
	node       string
	proxier    *network.Proxier
	router     *network.Router // nil: no routes
	dns        *dnsServer      // nil: no DNS
	clusterDNS netip.Addr
	lg         *slog.Logger

	decoded map[Key]decodedObj // owned by loop: the last view, decoded

	mu     sync.Mutex    // guards next
	next   Objects       // latest view not yet taken by run
	notify chan struct{} // capacity 1: next changed
}

// New sets up the node's proxy, router and DNS server; nothing changes
// on the node before Run. The DNS server listens on the first address of
// the podCIDR, the bridge's.
func New(cfg Config) (*Sync, error) {
	if !cfg.ClusterDNS.Is4() {
		return nil, fmt.Errorf("cluster DNS %v must be an IPv4 address", cfg.ClusterDNS)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ipt, err := network.NewIPTables(network.IPTablesConfig{})
	if err != nil {
		return nil, err
	}
	proxier, err := network.NewProxier(network.ProxierConfig{Executor: ipt, ClusterCIDR: cfg.ClusterCIDR,
		PodCIDR: cfg.PodCIDR, LocalhostNodePorts: true, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	router, err := network.NewRouter(network.RouterConfig{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Sync{node: cfg.NodeName, proxier: proxier, router: router, clusterDNS: cfg.ClusterDNS,
		dns:    newDNSServer(cfg.PodCIDR.Masked().Addr().Next(), cfg.ClusterDomain, cfg.Logger),
		lg:     cfg.Logger.With("component", "netsync"),
		notify: make(chan struct{}, 1)}, nil
}

// Run runs the DNS server and applies views until ctx ends.
func (n *Sync) Run(ctx context.Context) error {
	defer n.router.Close()
	g, gctx := errgroup.WithContext(ctx)
	if n.dns != nil {
		g.Go(func() error { return n.dns.run(gctx) })
	}
	g.Go(func() error { return n.loop(gctx) })
	return g.Wait()
}

// Update replaces the view to apply; objs must not change afterwards. It
// is safe for concurrent use.
func (n *Sync) Update(objs Objects) {
	n.mu.Lock()
	n.next = objs
	n.mu.Unlock()
	select {
	case n.notify <- struct{}{}:
	default:
	}
}

// loop applies views until ctx ends. Nothing is applied before the first
// view, so a restarted agent leaves the rules it finds alone until it has
// the complete set; the rules stay when run returns.
func (n *Sync) loop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false
	var cur Objects
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.notify:
			if !armed {
				timer.Reset(syncDelay)
				armed = true
			}
		case <-timer.C:
			armed = false
			n.mu.Lock()
			if n.next != nil {
				cur, n.next = n.next, nil
			}
			n.mu.Unlock()
			if cur == nil {
				continue
			}
			if err := n.sync(ctx, cur); err != nil && ctx.Err() == nil {
				n.lg.Warn("service networking not in sync; retrying", "err", err, "in", retryDelay)
				timer.Reset(retryDelay)
				armed = true
			}
		}
	}
}

// sync applies one view. Invalid objects are logged and left out; the
// error is for what a retry may fix.
func (n *Sync) sync(ctx context.Context, objs Objects) error {
	start := time.Now()
	v, decoded := decodeViewCached(objs, n.decoded, n.lg)
	n.decoded = decoded
	merged := mergeSlices(v.slices)
	svcs, eps := v.proxyServices, proxyEndpointsFromSlices(merged)
	if n.dns != nil && n.clusterDNS.IsValid() {
		svcs, eps = withClusterDNS(svcs, eps, n.clusterDNS, n.dns.addr)
	}
	var errs []error
	n.proxier.SetRemoteNodes(remoteNodeIPs(n.node, v.nodes))
	if err := n.proxier.Sync(ctx, svcs, eps); err != nil {
		if !onlyInvalid(err) {
			errs = append(errs, err)
		}
		n.lg.Warn("service rules incomplete", "err", err)
	}
	if n.router != nil {
		if err := n.router.SyncRoutes(ctx, nodeRoutes(n.node, v.nodes, n.lg)); err != nil {
			errs = append(errs, err)
		}
	}
	if n.dns != nil {
		n.dns.setRecords(newRecords(v.services, merged))
	}
	n.lg.Debug("service networking synced", "services", len(svcs), "nodes", len(v.nodes), "took", time.Since(start))
	return errors.Join(errs...)
}

// onlyInvalid reports whether err holds nothing but invalid service ports,
// which a retry will not fix.
func onlyInvalid(err error) bool {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		for _, e := range j.Unwrap() {
			if !onlyInvalid(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, network.ErrInvalidConfig)
}

// view is decoded Objects.
type view struct {
	services []*corev1.Service
	nodes    []*corev1.Node
	// slices are the EndpointSlices of services, converted.
	slices []slicePart
	// proxyServices are the services converted for the proxier.
	proxyServices []network.Service
}

// decodedObj is an object as decoded from data.
type decodedObj struct {
	data []byte
	obj  any // *corev1.Service, *discoveryv1.EndpointSlice, *corev1.Endpoints or *corev1.Node
	// proxy is obj converted: a network.Service, a slicePart, or nil.
	proxy any
}

// decodeViewCached decodes objs, reusing the objects of prev whose bytes
// did not change, and returns the view and the cache for the next call.
// With thousands of services a sync after one change would otherwise spend
// most of its time decoding what it decoded before. Objects in the view
// are shared with the cache and must not be changed.
func decodeViewCached(objs Objects, prev map[Key]decodedObj, lg *slog.Logger) (view, map[Key]decodedObj) {
	var v view
	next := make(map[Key]decodedObj, len(objs))
	for k, data := range objs {
		d, ok := prev[k]
		if !ok || !sameBytes(d.data, data) {
			obj, err := decodeNetObject(k.Kind, data)
			if err != nil {
				lg.Warn("undecodable object from the server", "kind", k.Kind, "name", k.Namespace+"/"+k.Name, "err", err)
				continue
			}
			d = decodedObj{data: data, obj: obj, proxy: proxyObject(obj)}
		}
		next[k] = d
		switch o := d.obj.(type) {
		case *corev1.Service:
			v.services = append(v.services, o)
		case *corev1.Node:
			v.nodes = append(v.nodes, o)
		}
		switch o := d.proxy.(type) {
		case network.Service:
			v.proxyServices = append(v.proxyServices, o)
		case slicePart:
			v.slices = append(v.slices, o)
		}
	}
	return v, next
}

// proxyObject converts a decoded service for the proxier and an
// EndpointSlice or Endpoints for merging; nil for anything else.
func proxyObject(obj any) any {
	switch o := obj.(type) {
	case *corev1.Service:
		if ps, ok := proxyService(o); ok {
			return ps
		}
	case *discoveryv1.EndpointSlice:
		if p, ok := sliceToPart(o); ok {
			return p
		}
	case *corev1.Endpoints:
		return endpointsToPart(o)
	}
	return nil
}

// sameBytes reports whether a and b hold the same bytes, at once when they
// are the same slice, as an object the session did not touch is.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0] || bytes.Equal(a, b)
}

// decodeNetObject decodes a service, EndpointSlice, Endpoints or node;
// other kinds decode to nil.
func decodeNetObject(kind Kind, data []byte) (any, error) {
	var obj api.Object
	switch kind {
	case KindService:
		obj = &corev1.Service{}
	case KindEndpointSlice:
		obj = &discoveryv1.EndpointSlice{}
	case KindNode:
		obj = &corev1.Node{}
	case KindEndpoints:
		obj = &corev1.Endpoints{}
	default:
		return nil, nil
	}
	if err := api.DecodeObject(data, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// proxyServices converts services for the proxy. Headless and ExternalName
// services have no cluster IP and are left out; a LoadBalancer service is
// exposed like a NodePort one and, as kube-proxy does, at the IPs of its
// status.loadBalancer.ingress.
func proxyServices(svcs []*corev1.Service) []network.Service {
	var out []network.Service
	for _, s := range svcs {
		if ps, ok := proxyService(s); ok {
			out = append(out, ps)
		}
	}
	return out
}

// proxyService converts one service; ok is false for one the proxy does
// not serve.
func proxyService(s *corev1.Service) (ps network.Service, ok bool) {
	ip, err := netip.ParseAddr(s.Spec.ClusterIP)
	if err != nil || s.Spec.Type == corev1.ServiceTypeExternalName {
		return ps, false
	}
	ps = network.Service{Namespace: s.Namespace, Name: s.Name, ClusterIP: ip, AffinityTimeout: affinityTimeout(&s.Spec)}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range s.Status.LoadBalancer.Ingress {
			// The proxy is IPv4 only; other ingress addresses are
			// not its to serve, nor are those of a load balancer in
			// Proxy mode, which sends traffic to the nodes itself
			// (as kube-proxy leaves them).
			if in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			if a, err := netip.ParseAddr(in.IP); err == nil && a.Unmap().Is4() {
				ps.ExternalIPs = append(ps.ExternalIPs, a.Unmap())
			}
		}
	}
	exposed := s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
	for _, p := range s.Spec.Ports {
		sp := network.ServicePort{Name: p.Name, Protocol: strings.ToLower(string(p.Protocol)), Port: uint16(p.Port)}
		if exposed {
			sp.NodePort = uint16(p.NodePort)
		}
		ps.Ports = append(ps.Ports, sp)
	}
	return ps, true
}

// defaultAffinityTimeout is ClientIP affinity's timeout when the Service
// gives none (Kubernetes' default, 3 hours).
const defaultAffinityTimeout = 10800 * time.Second

// affinityTimeout returns the ClientIP session affinity timeout of spec, 0
// without affinity.
func affinityTimeout(spec *corev1.ServiceSpec) time.Duration {
	if spec.SessionAffinity != corev1.ServiceAffinityClientIP {
		return 0
	}
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
		return time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
	}
	return defaultAffinityTimeout
}

// withClusterDNS replaces any kube-system/kube-dns service, and any other
// service at clusterDNS, with one at clusterDNS whose only backend is the
// node's own DNS listener at local (UDP and TCP port 53).
func withClusterDNS(svcs []network.Service, eps []network.Endpoints, clusterDNS, local netip.Addr) ([]network.Service, []network.Endpoints) {
	isDNS := func(ns, name string) bool { return ns == dnsServiceNamespace && name == dnsServiceName }
	outS := make([]network.Service, 0, len(svcs)+1)
	for _, s := range svcs {
		if !isDNS(s.Namespace, s.Name) && s.ClusterIP != clusterDNS {
			outS = append(outS, s)
		}
	}
	outE := make([]network.Endpoints, 0, len(eps)+1)
	for _, e := range eps {
		if !isDNS(e.Namespace, e.Name) {
			outE = append(outE, e)
		}
	}
	backend := []netip.AddrPort{netip.AddrPortFrom(local, 53)}
	outS = append(outS, network.Service{Namespace: dnsServiceNamespace, Name: dnsServiceName, ClusterIP: clusterDNS,
		Ports: []network.ServicePort{{Name: "dns", Protocol: "udp", Port: 53}, {Name: "dns-tcp", Protocol: "tcp", Port: 53}}})
	outE = append(outE, network.Endpoints{Namespace: dnsServiceNamespace, Name: dnsServiceName,
		Ports: map[string][]netip.AddrPort{"dns": backend, "dns-tcp": backend}})
	return outS, outE
}
