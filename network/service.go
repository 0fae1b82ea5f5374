package network

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Service is what the proxy needs of a Kubernetes Service.
type Service struct {
	Namespace, Name string
	// ClusterIP is the virtual IP; services without one (headless) are
	// skipped.
	ClusterIP netip.Addr
	Ports     []ServicePort
	// ExternalIPs are further addresses the ports are served at, such as
	// a load balancer's ingress IPs (which may be node addresses); traffic
	// to them is masqueraded like NodePort traffic.
	ExternalIPs []netip.Addr
	// AffinityTimeout, when not 0, gives ClientIP session affinity: a
	// client IP keeps reaching the backend it reached last as long as it
	// comes back within the timeout (whole seconds, at least one).
	AffinityTimeout time.Duration
}

// ServicePort is one port of a Service.
type ServicePort struct {
	// Name matches the port's name in Endpoints; may be empty for a
	// single-port service.
	Name string
	// Protocol is "tcp" (default), "udp" or "sctp".
	Protocol string
	Port     uint16
	// NodePort, when not 0, also exposes the port on every local address
	// of the node, 127.0.0.1 included.
	NodePort uint16
}

// Endpoints lists a Service's ready backends.
type Endpoints struct {
	Namespace, Name string
	// Ports maps a service port name to its backends.
	Ports map[string][]netip.AddrPort
}

// svcPort is one service port joined with its backends, ready to render.
type svcPort struct {
	key       string // namespace/name:port, used in comments
	proto     string
	id        string // key/proto, unique among the service ports
	clusterIP netip.Addr
	port      uint16
	nodePort  uint16
	external  []netip.Addr     // sorted
	affinity  int              // ClientIP affinity timeout in seconds; 0: none
	backends  []netip.AddrPort // sorted
	svcChain  string           // derived from id; set by render
}

// joinPorts validates services, joins them with their endpoints and returns
// the service ports sorted by key. Invalid ports are reported and left out.
func joinPorts(services []Service, endpoints []Endpoints) ([]svcPort, error) {
	type name struct{ ns, name string }
	eps := make(map[name]map[string][]netip.AddrPort, len(endpoints))
	for _, e := range endpoints {
		eps[name{e.Namespace, e.Name}] = e.Ports
	}
	n := 0
	for _, s := range services {
		n += len(s.Ports)
	}
	out := make([]svcPort, 0, n)
	var errs []error
	for i, s := range services {
		if !s.ClusterIP.IsValid() {
			continue
		}
		if !s.ClusterIP.Is4() {
			errs = append(errs, fmt.Errorf("services[%d].clusterIP %s must be IPv4: %w", i, s.ClusterIP, ErrInvalidConfig))
			continue
		}
		external, err := externalIPs(s.ExternalIPs)
		if err != nil {
			errs = append(errs, fmt.Errorf("services[%d].externalIPs: %w", i, err))
			continue
		}
		for j, p := range s.Ports {
			sp, err := newSvcPort(s, p, eps[name{s.Namespace, s.Name}][p.Name])
			if err != nil {
				errs = append(errs, fmt.Errorf("services[%d].ports[%d]: %w", i, j, err))
				continue
			}
			sp.external = external
			if s.AffinityTimeout > 0 {
				sp.affinity = max(1, int(s.AffinityTimeout/time.Second))
			}
			out = append(out, sp)
		}
	}
	// Sort pointers: moving the structs costs more than comparing them.
	byKey := make([]*svcPort, len(out))
	for i := range out {
		byKey[i] = &out[i]
	}
	slices.SortFunc(byKey, func(a, b *svcPort) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.proto, b.proto)) })
	sorted := make([]svcPort, len(out))
	for i, sp := range byKey {
		sorted[i] = *sp
	}
	return sorted, errors.Join(errs...)
}

func newSvcPort(s Service, p ServicePort, backends []netip.AddrPort) (svcPort, error) {
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return svcPort{}, fmt.Errorf("protocol %q must be tcp, udp or sctp: %w", p.Protocol, ErrInvalidConfig)
	}
	if p.Port == 0 {
		return svcPort{}, fmt.Errorf("port must be set: %w", ErrInvalidConfig)
	}
	sp := svcPort{
		key:       s.Namespace + "/" + s.Name + ":" + p.Name,
		proto:     proto,
		clusterIP: s.ClusterIP,
		port:      p.Port,
		nodePort:  p.NodePort,
	}
	for _, b := range backends {
		if b.Addr().Unmap().Is4() && b.Port() != 0 {
			sp.backends = append(sp.backends, netip.AddrPortFrom(b.Addr().Unmap(), b.Port()))
		}
	}
	slices.SortFunc(sp.backends, func(a, b netip.AddrPort) int { return a.Compare(b) })
	sp.backends = slices.Compact(sp.backends)
	sp.id = sp.key + "/" + proto
	// svcChain is left to render, which knows the names of the ports it
	// rendered before.
	return sp, nil
}

// externalIPs returns ips sorted and without duplicates, or an error for an
// address other than IPv4.
func externalIPs(ips []netip.Addr) ([]netip.Addr, error) {
	if len(ips) == 0 {
		return nil, nil
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if ip = ip.Unmap(); !ip.Is4() {
			return nil, fmt.Errorf("%s must be IPv4: %w", ip, ErrInvalidConfig)
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// equal reports whether sp and o render the same rules.
func (sp svcPort) equal(o svcPort) bool {
	return sp.id == o.id && sp.clusterIP == o.clusterIP && sp.port == o.port &&
		sp.nodePort == o.nodePort && sp.affinity == o.affinity &&
		slices.Equal(sp.external, o.external) && slices.Equal(sp.backends, o.backends)
}

// sepChain names the chain that DNATs to one backend of sp.
func (sp svcPort) sepChain(b netip.AddrPort) string {
	return chainName("MINIK-SEP-", sp.key+"/"+sp.proto+"/"+b.String())
}

var chainEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// chainName returns prefix plus 16 characters of a hash of id, so names stay
// within iptables' 28-character limit and are stable across restarts.
func chainName(prefix, id string) string {
	sum := sha256.Sum256([]byte(id))
	return prefix + chainEncoding.EncodeToString(sum[:])[:16]
}
