package servicenet

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/minik-dev/minik/network"
)

// A Service's endpoints reach the node as EndpointSlices: any number of
// them per Service, each labelled kubernetes.io/service-name, each with
// its own ports. As kube-proxy and CoreDNS do, the node merges the slices
// of a Service and keeps, of each endpoint, its addresses, its hostname,
// its conditions and the ports of its slice.

// svcKey names a Service.
type svcKey struct{ namespace, name string }

// sliceEndpoint is one address of an EndpointSlice's endpoint.
type sliceEndpoint struct {
	addr     netip.Addr
	hostname string
	// Conditions, with the API's defaults applied: a nil ready means
	// ready, a nil serving means as ready, a nil terminating means not.
	ready, serving, terminating bool
	// ports are the slice's, shared by its endpoints.
	ports []discoveryv1.EndpointPort
}

// slicePart is what one EndpointSlice adds to its Service.
type slicePart struct {
	service   svcKey
	endpoints []sliceEndpoint
}

// sliceToPart returns what s adds to its Service; ok is false for a slice
// of no Service (no kubernetes.io/service-name label) or of FQDN
// addresses, which the node does not route.
func sliceToPart(s *discoveryv1.EndpointSlice) (p slicePart, ok bool) {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" || s.AddressType == discoveryv1.AddressTypeFQDN {
		return p, false
	}
	p.service = svcKey{s.Namespace, svc}
	for _, e := range s.Endpoints {
		ready := e.Conditions.Ready == nil || *e.Conditions.Ready
		serving := ready
		if e.Conditions.Serving != nil {
			serving = *e.Conditions.Serving
		}
		terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
		var hostname string
		if e.Hostname != nil {
			hostname = *e.Hostname
		}
		for _, a := range e.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			p.endpoints = append(p.endpoints, sliceEndpoint{addr: ip.Unmap(), hostname: hostname,
				ready: ready, serving: serving, terminating: terminating, ports: s.Ports})
		}
	}
	return p, true
}

// mergeSlices gathers the endpoints of each Service from parts, in a
// stable order (by address, then hostname). An address in several slices,
// as while the controller moves it, appears once for each.
func mergeSlices(parts []slicePart) map[svcKey][]sliceEndpoint {
	out := map[svcKey][]sliceEndpoint{}
	for _, p := range parts {
		out[p.service] = append(out[p.service], p.endpoints...)
	}
	for _, eps := range out {
		slices.SortStableFunc(eps, func(a, b sliceEndpoint) int {
			return cmp.Or(a.addr.Compare(b.addr), strings.Compare(a.hostname, b.hostname))
		})
	}
	return out
}

// proxyEndpointsOf converts a Service's merged endpoints for the proxier.
// Each port gets the ready endpoints that have it or, when none is
// ready, the serving ones that are terminating, as kube-proxy falls back
// to them so that a Service whose pods all shut down keeps answering
// until they are gone.
func proxyEndpointsOf(svc svcKey, eps []sliceEndpoint) network.Endpoints {
	ready := map[string][]netip.AddrPort{}
	fallback := map[string][]netip.AddrPort{}
	for _, e := range eps {
		for _, p := range e.ports {
			if p.Port == nil {
				continue
			}
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			ap := netip.AddrPortFrom(e.addr, uint16(*p.Port))
			switch {
			case e.ready:
				ready[name] = append(ready[name], ap)
			case e.serving && e.terminating:
				fallback[name] = append(fallback[name], ap)
			}
		}
	}
	for name, aps := range fallback {
		if len(ready[name]) == 0 {
			ready[name] = aps
		}
	}
	return network.Endpoints{Namespace: svc.namespace, Name: svc.name, Ports: ready}
}

// proxyEndpointsFromSlices converts the merged endpoints of every Service
// for the proxier.
func proxyEndpointsFromSlices(merged map[svcKey][]sliceEndpoint) []network.Endpoints {
	out := make([]network.Endpoints, 0, len(merged))
	for svc, eps := range merged {
		out = append(out, proxyEndpointsOf(svc, eps))
	}
	return out
}

// slicePortKeys returns the named ports of an endpoint by "name/proto",
// for SRV records.
func slicePortKeys(ports []discoveryv1.EndpointPort) map[string]uint16 {
	out := map[string]uint16{}
	for _, p := range ports {
		if p.Name == nil || *p.Name == "" || p.Port == nil {
			continue
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out[portKey(*p.Name, proto)] = uint16(*p.Port)
	}
	return out
}
