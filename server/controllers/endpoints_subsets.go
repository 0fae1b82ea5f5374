package controllers

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podEndpoint is a pod behind a Service: the Service's ports resolved on
// the pod, and whether the pod is ready.
type podEndpoint struct {
	pod   *corev1.Pod
	ports []corev1.EndpointPort
	ready bool
}

// podEndpoints returns the pods (those svc's selector matches) that can
// take svc's traffic, in pods' order: those with an IP, not finished, with
// at least one of svc's ports resolved. Pods being deleted are included
// only when withTerminating is set (EndpointSlices report them, Endpoints
// leave them out). Both the Endpoints and the EndpointSlice controllers
// build on it.
func podEndpoints(svc *corev1.Service, pods []*corev1.Pod, withTerminating bool) []podEndpoint {
	var out []podEndpoint
	for _, pod := range pods {
		if pod.Status.PodIP == "" || (pod.DeletionTimestamp != nil && !withTerminating) ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ports, ok := resolvePorts(svc, pod)
		if !ok {
			continue
		}
		out = append(out, podEndpoint{pod: pod, ports: ports, ready: podReady(pod)})
	}
	return out
}

// endpointSubsets returns the subsets of svc's Endpoints for pods (those
// its selector matches): one subset per distinct set of resolved ports,
// addresses sorted by IP, subsets sorted by their ports.
func endpointSubsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	bySig := map[string]*corev1.EndpointSubset{}
	for _, pe := range podEndpoints(svc, pods, false) {
		sig := portsSignature(pe.ports)
		ss := bySig[sig]
		if ss == nil {
			ss = &corev1.EndpointSubset{Ports: pe.ports}
			bySig[sig] = ss
		}
		addr := podAddress(svc, pe.pod)
		if pe.ready || svc.Spec.PublishNotReadyAddresses {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
	}
	var out []corev1.EndpointSubset
	for _, ss := range bySig {
		out = append(out, *ss)
	}
	return normalSubsets(out)
}

// normalSubsets sorts subsets into the order endpointSubsets writes them
// in, so two equivalent lists compare equal. It sorts in place and
// returns subsets (nil when empty).
func normalSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	if len(subsets) == 0 {
		return nil
	}
	for i := range subsets {
		ss := &subsets[i]
		slices.SortFunc(ss.Addresses, compareAddresses)
		slices.SortFunc(ss.NotReadyAddresses, compareAddresses)
		slices.SortFunc(ss.Ports, func(a, b corev1.EndpointPort) int { return strings.Compare(portKey(a), portKey(b)) })
	}
	slices.SortFunc(subsets, func(a, b corev1.EndpointSubset) int {
		return strings.Compare(portsSignature(a.Ports), portsSignature(b.Ports))
	})
	return subsets
}

func compareAddresses(a, b corev1.EndpointAddress) int {
	if c := strings.Compare(a.IP, b.IP); c != 0 {
		return c
	}
	return strings.Compare(targetName(a), targetName(b))
}

func targetName(a corev1.EndpointAddress) string {
	if a.TargetRef == nil {
		return ""
	}
	return a.TargetRef.Name
}

// podAddress is pod's address in svc's Endpoints. A pod whose subdomain
// names svc carries its hostname there, which the cluster DNS serves as
// hostname.svc.namespace.svc.
func podAddress(svc *corev1.Service, pod *corev1.Pod) corev1.EndpointAddress {
	a := corev1.EndpointAddress{
		IP: pod.Status.PodIP,
		TargetRef: &corev1.ObjectReference{
			Kind:      "Pod",
			Namespace: pod.Namespace,
			Name:      pod.Name,
			UID:       pod.UID,
		},
	}
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		a.Hostname = pod.Spec.Hostname
	}
	if pod.Spec.NodeName != "" {
		n := pod.Spec.NodeName
		a.NodeName = &n
	}
	return a
}

// resolvePorts maps svc's ports to pod's: a numeric targetPort as is (0
// means the service port), a named one to the pod's container port of
// that name and protocol. ok is false when no port resolves.
func resolvePorts(svc *corev1.Service, pod *corev1.Pod) (ports []corev1.EndpointPort, ok bool) {
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		n, found := targetPort(sp, proto, pod)
		if !found {
			continue
		}
		ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: n, Protocol: proto, AppProtocol: sp.AppProtocol})
	}
	return ports, len(ports) > 0 || len(svc.Spec.Ports) == 0
}

func targetPort(sp corev1.ServicePort, proto corev1.Protocol, pod *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		return namedPort(pod, tp.StrVal, proto)
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, true
	}
	return sp.Port, true
}

func namedPort(pod *corev1.Pod, name string, proto corev1.Protocol) (int32, bool) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if p.Name == name && pp == proto {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

func portKey(p corev1.EndpointPort) string {
	return p.Name + "/" + string(p.Protocol) + "/" + strconv.Itoa(int(p.Port))
}

func portsSignature(ports []corev1.EndpointPort) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = portKey(p)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}
