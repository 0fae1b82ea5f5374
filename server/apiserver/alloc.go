package apiserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/internal/ranges"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// ipAllocator hands out Service cluster IPs, recorded under
// registry.ServiceIPsPrefix with their owner. Its range's items are the
// usable addresses: item i is the address at offset i+1 of the prefix
// (neither the network's nor the broadcast address).
type ipAllocator struct {
	r      *ranges.Range
	prefix netip.Prefix
	base   uint32
	size   uint32
}

func newIPAllocator(st store.Store, cidr string) (*ipAllocator, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
		return nil, fmt.Errorf("service CIDR %q: must be an IPv4 prefix of /29 or larger", cidr)
	}
	p = p.Masked()
	b := p.Addr().As4()
	a := &ipAllocator{prefix: p, base: binary.BigEndian.Uint32(b[:]), size: 1 << (32 - p.Bits())}
	a.r = ranges.New(st, registry.ServiceIPsPrefix, a.size-2, func(i uint32) string { return a.addr(i + 1).String() })
	return a, nil
}

// reserved addresses are handed out only when asked for by value: the
// first one (the API service) and the tenth (cluster DNS).
func (a *ipAllocator) reserved(off uint32) bool { return off == 1 || off == 10 }

// offset is ip's offset in the prefix, which holds it.
func (a *ipAllocator) offset(ip netip.Addr) uint32 {
	b := ip.As4()
	return binary.BigEndian.Uint32(b[:]) - a.base
}

func (a *ipAllocator) addr(off uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a.base+off)
	return netip.AddrFrom4(b)
}

// Allocate takes ip, or any free address when ip is invalid (empty).
func (a *ipAllocator) Allocate(ctx context.Context, ip netip.Addr, owner string) (netip.Addr, error) {
	if ip.IsValid() {
		if !a.prefix.Contains(ip) || ip == a.addr(0) || ip == a.addr(a.size-1) {
			return ip, errIPRange
		}
		err := a.r.Take(ctx, a.offset(ip)-1, owner)
		if errors.Is(err, ranges.ErrTaken) {
			return ip, errIPTaken
		}
		return ip, err
	}
	i, err := a.r.TakeFree(ctx, rand.Uint32N(a.r.Size()), owner, func(i uint32) bool { return a.reserved(i + 1) }, nil)
	if errors.Is(err, ranges.ErrFull) {
		return netip.Addr{}, errIPFull
	}
	return a.addr(i + 1), err
}

// Release frees ip, an address of the prefix; one that is not allocated
// is ignored.
func (a *ipAllocator) Release(ctx context.Context, ip netip.Addr) error {
	return a.r.Release(ctx, a.offset(ip)-1)
}

var (
	errIPRange = errors.New("provided IP is not in the valid range")
	errIPTaken = errors.New("provided IP is already allocated")
	errIPFull  = errors.New("range is full")
)

// allocate takes what a new object needs from shared ranges and returns
// the function that gives it back.
func (s *Server) allocate(ctx context.Context, res *registry.Resource, obj runtime.Object) (func(), error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return func() {}, nil
	}
	releaseIP, err := s.allocateClusterIP(ctx, svc)
	if err != nil {
		return nil, err
	}
	undoPorts, _, err := s.allocateNodePorts(ctx, svc, nil)
	if err != nil {
		releaseIP()
		return nil, err
	}
	return func() { releaseIP(); undoPorts() }, nil
}

// allocateClusterIP gives svc its cluster IP (the one asked for, or a free
// one) unless it is headless or an ExternalName.
func (s *Server) allocateClusterIP(ctx context.Context, svc *corev1.Service) (func(), error) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return func() {}, nil
	}
	var want netip.Addr
	if svc.Spec.ClusterIP != "" {
		var err error
		if want, err = netip.ParseAddr(svc.Spec.ClusterIP); err != nil {
			return nil, invalidClusterIP(svc, err)
		}
	}
	ip, err := s.ips.Allocate(ctx, want, svc.Namespace+"/"+svc.Name)
	switch {
	case errors.Is(err, errIPRange):
		return nil, invalidClusterIP(svc, fmt.Errorf("failed to allocate IP %s: %w; the range of valid IPs is %s", want, err, s.ips.prefix))
	case errors.Is(err, errIPTaken):
		return nil, invalidClusterIP(svc, fmt.Errorf("failed to allocate IP %s: %w", want, err))
	case errors.Is(err, errIPFull):
		return nil, apierrors.NewInternalError(fmt.Errorf("failed to allocate a service IP: %w", err))
	case err != nil:
		return nil, err
	}
	svc.Spec.ClusterIP = ip.String()
	svc.Spec.ClusterIPs = []string{ip.String()}
	return func() { s.ips.Release(context.WithoutCancel(ctx), ip) }, nil
}

func invalidClusterIP(svc *corev1.Service, err error) error {
	return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, field.ErrorList{
		field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP, err.Error()),
	})
}

// release gives back what a deleted object held.
func (s *Server) release(ctx context.Context, res *registry.Resource, obj runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	if wantsNodePorts(svc) {
		ports := make([]int32, 0, len(svc.Spec.Ports))
		for _, p := range svc.Spec.Ports {
			ports = append(ports, p.NodePort)
		}
		s.releaseNodePorts(ctx, svc, ports)
	}
	s.releaseClusterIPs(ctx, svc)
}

// releaseClusterIPs gives back the cluster IPs svc holds.
func (s *Server) releaseClusterIPs(ctx context.Context, svc *corev1.Service) {
	for _, v := range svc.Spec.ClusterIPs {
		if ip, err := netip.ParseAddr(v); err == nil && s.prefixContains(ip) {
			if err := s.ips.Release(context.WithoutCancel(ctx), ip); err != nil {
				s.log.Warn("releasing service ip", "ip", v, "err", err)
			}
		}
	}
}

// allocateServiceUpdate takes what svc, an update of old, newly needs from
// shared ranges: a cluster IP when it stops being an ExternalName service,
// node ports as allocateNodePorts says. It returns the undo of what it
// took, for a write that fails, and the release of what old held that svc
// no longer does, for after the write.
func (s *Server) allocateServiceUpdate(ctx context.Context, svc, old *corev1.Service) (undo, release func(), err error) {
	undoIP := func() {}
	if old.Spec.Type == corev1.ServiceTypeExternalName && svc.Spec.Type != corev1.ServiceTypeExternalName {
		if undoIP, err = s.allocateClusterIP(ctx, svc); err != nil {
			return nil, nil, err
		}
	}
	undoPorts, freed, err := s.allocateNodePorts(ctx, svc, old)
	if err != nil {
		undoIP()
		return nil, nil, err
	}
	release = func() {
		s.releaseNodePorts(ctx, svc, freed)
		if svc.Spec.Type == corev1.ServiceTypeExternalName && old.Spec.Type != corev1.ServiceTypeExternalName {
			s.releaseClusterIPs(ctx, old)
		}
	}
	return func() { undoIP(); undoPorts() }, release, nil
}

func (s *Server) prefixContains(ip netip.Addr) bool { return s.ips.prefix.Contains(ip) }
