package controllers

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Slices are built without names; reconcile gives them to the API
// server's generateName or takes the name of the slice they replace.

// sliceGroup collects the endpoints of one address type and port set.
type sliceGroup struct {
	addressType discoveryv1.AddressType
	ports       []discoveryv1.EndpointPort
	endpoints   []discoveryv1.Endpoint
}

// groupedSlices collects endpoints into groups by address type and ports.
type groupedSlices map[string]*sliceGroup

func (g groupedSlices) add(at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, ep discoveryv1.Endpoint) {
	k := string(at) + "|" + slicePortsSignature(ports)
	grp := g[k]
	if grp == nil {
		grp = &sliceGroup{addressType: at, ports: ports}
		g[k] = grp
	}
	grp.endpoints = append(grp.endpoints, ep)
}

// slices cuts each group, endpoints sorted by address, into slices of at
// most maxPer endpoints, stamped by meta; groups come in key order.
func (g groupedSlices) slices(maxPer int, meta func(*discoveryv1.EndpointSlice)) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, k := range sortedKeys(g) {
		grp := g[k]
		slices.SortFunc(grp.endpoints, func(a, b discoveryv1.Endpoint) int { return strings.Compare(a.Addresses[0], b.Addresses[0]) })
		for start := 0; start < len(grp.endpoints); start += maxPer {
			end := min(start+maxPer, len(grp.endpoints))
			s := &discoveryv1.EndpointSlice{
				AddressType: grp.addressType,
				Endpoints:   slices.Clone(grp.endpoints[start:end]),
				Ports:       grp.ports,
			}
			meta(s)
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// podSlices returns the slices of svc for its pod endpoints eps, one
// address per endpoint for each of svc's IP families; zoneOf gives a
// node's zone. A Service without endpoints gets one empty slice, as in
// Kubernetes, so its clients can tell "no endpoints" from "not synced".
func podSlices(svc *corev1.Service, eps []podEndpoint, zoneOf func(node string) string, maxPer int) []*discoveryv1.EndpointSlice {
	types := serviceAddressTypes(svc)
	g := groupedSlices{}
	for _, pe := range eps {
		ports := slicePorts(pe.ports)
		for _, at := range types {
			if ip := podIPOf(pe.pod, at); ip != "" {
				g.add(at, ports, podSliceEndpoint(svc, pe, ip, zoneOf(pe.pod.Spec.NodeName)))
			}
		}
	}
	meta := func(s *discoveryv1.EndpointSlice) { stampPodSlice(s, svc) }
	if len(g) == 0 {
		s := &discoveryv1.EndpointSlice{AddressType: types[0]}
		meta(s)
		return []*discoveryv1.EndpointSlice{s}
	}
	return g.slices(maxPer, meta)
}

// podSliceEndpoint is pe at address ip: ready when serving and not being
// deleted (or when svc publishes not-ready addresses), serving when the
// pod is ready, terminating when it is being deleted.
func podSliceEndpoint(svc *corev1.Service, pe podEndpoint, ip, zone string) discoveryv1.Endpoint {
	pod := pe.pod
	terminating := pod.DeletionTimestamp != nil
	serving := pe.ready || svc.Spec.PublishNotReadyAddresses
	ready := serving && (!terminating || svc.Spec.PublishNotReadyAddresses)
	ep := discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if n := pod.Spec.NodeName; n != "" {
		ep.NodeName = &n
	}
	if zone != "" {
		ep.Zone = &zone
	}
	if h := pod.Spec.Hostname; h != "" && pod.Spec.Subdomain == svc.Name {
		ep.Hostname = &h
	}
	return ep
}

// stampPodSlice gives a slice of svc its labels (svc's, plus the service
// name, manager and headless marks) and svc as controlling owner.
func stampPodSlice(s *discoveryv1.EndpointSlice, svc *corev1.Service) {
	s.Namespace = svc.Namespace
	s.GenerateName = svc.Name + "-"
	s.Labels = maps(svc.Labels)
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[discoveryv1.LabelServiceName] = svc.Name
	s.Labels[discoveryv1.LabelManagedBy] = SliceManagerPods
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		s.Labels[corev1.IsHeadlessService] = ""
	} else {
		delete(s.Labels, corev1.IsHeadlessService)
	}
	s.OwnerReferences = []metav1.OwnerReference{ownerRef("Service", svc.Name, svc.UID)}
}

// mirrorSlices returns the slices mirroring ep, the Endpoints of svc (a
// Service without selector): addresses ready, notReadyAddresses not.
// Addresses that are not IPs are left out; no addresses, no slices.
func mirrorSlices(svc *corev1.Service, ep *corev1.Endpoints, maxPer int) []*discoveryv1.EndpointSlice {
	g := groupedSlices{}
	for _, ss := range ep.Subsets {
		ports := slicePorts(ss.Ports)
		for _, a := range ss.Addresses {
			addMirrored(g, ports, a, true)
		}
		for _, a := range ss.NotReadyAddresses {
			addMirrored(g, ports, a, false)
		}
	}
	return g.slices(maxPer, func(s *discoveryv1.EndpointSlice) {
		s.Namespace = ep.Namespace
		s.GenerateName = svc.Name + "-"
		s.Labels = maps(ep.Labels)
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[discoveryv1.LabelServiceName] = svc.Name
		s.Labels[discoveryv1.LabelManagedBy] = SliceManagerMirror
		s.OwnerReferences = []metav1.OwnerReference{ownerRef("Endpoints", ep.Name, ep.UID)}
	})
}

func addMirrored(g groupedSlices, ports []discoveryv1.EndpointPort, a corev1.EndpointAddress, ready bool) {
	ip, err := netip.ParseAddr(a.IP)
	if err != nil {
		return
	}
	at := discoveryv1.AddressTypeIPv4
	if !ip.Is4() {
		at = discoveryv1.AddressTypeIPv6
	}
	ep := discoveryv1.Endpoint{
		Addresses:  []string{a.IP},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef:  a.TargetRef,
		NodeName:   a.NodeName,
	}
	if a.Hostname != "" {
		h := a.Hostname
		ep.Hostname = &h
	}
	g.add(at, ports, ep)
}

// ownerRef is a controlling owner reference to a core/v1 object.
func ownerRef(kind, name string, uid types.UID) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: "v1", Kind: kind, Name: name, UID: uid, Controller: &t, BlockOwnerDeletion: &t}
}

// slicePorts converts resolved Endpoints ports to slice ports, in a
// stable order.
func slicePorts(ports []corev1.EndpointPort) []discoveryv1.EndpointPort {
	sorted := slices.Clone(ports)
	slices.SortFunc(sorted, func(a, b corev1.EndpointPort) int { return strings.Compare(portKey(a), portKey(b)) })
	out := make([]discoveryv1.EndpointPort, 0, len(sorted))
	for _, p := range sorted {
		name, port, proto := p.Name, p.Port, p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: p.AppProtocol})
	}
	return out
}

func slicePortsSignature(ports []discoveryv1.EndpointPort) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		var k corev1.EndpointPort
		if p.Name != nil {
			k.Name = *p.Name
		}
		if p.Port != nil {
			k.Port = *p.Port
		}
		if p.Protocol != nil {
			k.Protocol = *p.Protocol
		}
		keys[i] = portKey(k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// serviceAddressTypes are the address types of svc's IP families, IPv4
// when it names none.
func serviceAddressTypes(svc *corev1.Service) []discoveryv1.AddressType {
	var out []discoveryv1.AddressType
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			out = append(out, discoveryv1.AddressTypeIPv4)
		case corev1.IPv6Protocol:
			out = append(out, discoveryv1.AddressTypeIPv6)
		}
	}
	if len(out) == 0 {
		out = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	}
	return out
}

// podIPOf returns pod's IP of the address type's family, "" if none.
func podIPOf(pod *corev1.Pod, at discoveryv1.AddressType) string {
	ips := []string{pod.Status.PodIP}
	for _, p := range pod.Status.PodIPs {
		ips = append(ips, p.IP)
	}
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() == (at == discoveryv1.AddressTypeIPv4) {
			return s
		}
	}
	return ""
}
