package servicenet

import (
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/network"
)

// PodSetter receives the pods bound to the node (pods.Manager).
type PodSetter interface {
	SetPods(pods []*corev1.Pod)
}

// HostPorts remembers the hostPorts of the node's pods, by pod UID, so
// that the CNI setup of a sandbox can map them (the runtime hands the
// network hook only the pod's UID). It sits in front of the pod manager
// and sees every desired set on its way there. It is safe for concurrent
// use.
type HostPorts struct {
	// Next receives every set after HostPorts; set it before the first
	// SetPods.
	Next PodSetter

	mu    sync.Mutex
	byUID map[string][]network.PortMapping // guarded by mu
}

// NewHostPorts returns a HostPorts that knows no pods yet.
func NewHostPorts() *HostPorts {
	return &HostPorts{byUID: map[string][]network.PortMapping{}}
}

// SetPods records the pods' hostPorts and passes the set on.
func (h *HostPorts) SetPods(pods []*corev1.Pod) {
	m := make(map[string][]network.PortMapping, len(pods))
	for _, p := range pods {
		if pm := portMappings(p); len(pm) > 0 {
			m[string(p.UID)] = pm
		}
	}
	h.mu.Lock()
	h.byUID = m
	h.mu.Unlock()
	h.Next.SetPods(pods)
}

// For returns the mappings of pod uid (nil if it has none).
func (h *HostPorts) For(uid string) []network.PortMapping {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byUID[uid]
}

// portMappings lists the container ports of p that ask for a hostPort.
func portMappings(p *corev1.Pod) []network.PortMapping {
	var out []network.PortMapping
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort == 0 || p.Spec.HostNetwork {
				continue
			}
			pm := network.PortMapping{
				HostPort: uint16(port.HostPort), ContainerPort: uint16(port.ContainerPort),
				Protocol: strings.ToLower(string(port.Protocol)),
			}
			if ip, err := netip.ParseAddr(port.HostIP); err == nil {
				pm.HostIP = ip
			}
			out = append(out, pm)
		}
	}
	return out
}
