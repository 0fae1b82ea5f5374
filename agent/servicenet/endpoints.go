package servicenet

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// A server of an earlier version sends a Service's endpoints as one
// core/v1 Endpoints, named as the Service, even to a node that asked for
// EndpointSlices. The node reads it as one more slice of its Service.

// endpointsToPart returns what e adds to its Service: the addresses of
// each subset, ready and serving, and its notReadyAddresses, neither, all
// with the subset's ports. Endpoints do not tell terminating addresses
// apart, so none is.
func endpointsToPart(e *corev1.Endpoints) slicePart {
	p := slicePart{service: svcKey{e.Namespace, e.Name}}
	for _, ss := range e.Subsets {
		ports := make([]discoveryv1.EndpointPort, len(ss.Ports))
		for i, sp := range ss.Ports {
			ports[i] = discoveryv1.EndpointPort{Name: new(sp.Name), Port: new(sp.Port), Protocol: new(sp.Protocol), AppProtocol: sp.AppProtocol}
		}
		add := func(addrs []corev1.EndpointAddress, ready bool) {
			for _, a := range addrs {
				ip, err := netip.ParseAddr(a.IP)
				if err != nil {
					continue
				}
				p.endpoints = append(p.endpoints, sliceEndpoint{addr: ip.Unmap(), hostname: a.Hostname,
					ready: ready, serving: ready, ports: ports})
			}
		}
		add(ss.Addresses, true)
		add(ss.NotReadyAddresses, false)
	}
	return p
}
