package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/internal/ranges"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// portAllocator hands out NodePorts, recorded under
// registry.NodePortsPrefix with the service that holds them. Its range's
// item i is port base+i.
type portAllocator struct {
	r          *ranges.Range
	base, size int
}

func newPortAllocator(st store.Store, base, size int) *portAllocator {
	return &portAllocator{
		r:    ranges.New(st, registry.NodePortsPrefix, uint32(size), func(i uint32) string { return strconv.Itoa(base + int(int32(i))) }),
		base: base, size: size,
	}
}

// parsePortRange parses "30000-32767".
func parsePortRange(r string) (base, size int, err error) {
	lo, hi, ok := strings.Cut(r, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("node port range %q: want FIRST-LAST within 1-65535", r)
	}
	return a, b - a + 1, nil
}

func (a *portAllocator) String() string {
	return fmt.Sprintf("%d-%d", a.base, a.base+a.size-1)
}

// allocate takes port (0 = any free one, never one of avoid) for owner.
// avoid holds the ports the same service already uses or names, so that a
// scan reaching one of them does not hand it out a second time.
func (a *portAllocator) allocate(ctx context.Context, port int32, owner string, avoid map[int32]bool) (int32, error) {
	if port != 0 {
		if int(port) < a.base || int(port) >= a.base+a.size {
			return port, errPortRange
		}
		err := a.r.Take(ctx, a.item(port), owner)
		if errors.Is(err, ranges.ErrTaken) {
			err = a.takenBy(ctx, port, owner)
		}
		return port, err
	}
	skip := func(i uint32) bool { return avoid[a.port(i)] }
	i, err := a.r.TakeFree(ctx, uint32(rand.IntN(a.size)), owner, skip, func(i uint32) error {
		if err := a.takenBy(ctx, a.port(i), owner); !errors.Is(err, errPortTaken) {
			return err
		}
		return nil
	})
	if errors.Is(err, ranges.ErrFull) {
		return 0, errPortFull
	}
	return a.port(i), err
}

// item is port's item in the range; a port below it wraps around, and
// port gives it back.
func (a *portAllocator) item(port int32) uint32 { return uint32(int32(int(port) - a.base)) }

func (a *portAllocator) port(i uint32) int32 { return int32(a.base + int(int32(i))) }

// takenBy tells a port owner holds (errPortOwned) from one another
// service holds (errPortTaken).
func (a *portAllocator) takenBy(ctx context.Context, port int32, owner string) error {
	if holder, _, err := a.r.Owner(ctx, a.item(port)); err == nil && holder == owner {
		return errPortOwned
	}
	return errPortTaken
}

// release frees port if owner holds it.
func (a *portAllocator) release(ctx context.Context, port int32, owner string) {
	a.r.ReleaseOwned(ctx, a.item(port), owner)
}

var (
	errPortRange = errors.New("provided port is not in the valid range")
	errPortTaken = errors.New("provided port is already allocated")
	errPortOwned = errors.New("port already held by this service")
	errPortFull  = errors.New("range is full")
)

func wantsNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// picksNodePorts reports whether ports of svc without a node port get one:
// a LoadBalancer with allocateLoadBalancerNodePorts=false keeps only the
// node ports it names.
func picksNodePorts(svc *corev1.Service) bool {
	a := svc.Spec.AllocateLoadBalancerNodePorts
	return svc.Spec.Type != corev1.ServiceTypeLoadBalancer || a == nil || *a
}

// allocateNodePorts gives every port of svc a node port, keeping the ones
// held in old (nil on create). It returns what to undo if the write fails
// and the ports of old no longer used, to release after it succeeds.
func (s *Server) allocateNodePorts(ctx context.Context, svc, old *corev1.Service) (undo func(), freed []int32, err error) {
	owner := svc.Namespace + "/" + svc.Name
	held := map[int32]bool{}
	if old != nil && wantsNodePorts(old) {
		for _, p := range old.Spec.Ports {
			if p.NodePort != 0 {
				held[p.NodePort] = true
			}
		}
	}
	var taken []int32
	undo = func() {
		for _, p := range taken {
			s.ports.release(context.WithoutCancel(ctx), p, owner)
		}
	}
	inUse := map[int32]bool{}
	if wantsNodePorts(svc) {
		// Named ports are the service's before any port is picked for it.
		avoid := map[int32]bool{}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				avoid[p.NodePort] = true
			}
		}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 && (held[p.NodePort] || inUse[p.NodePort]) {
				inUse[p.NodePort] = true
				continue
			}
			if p.NodePort == 0 && !picksNodePorts(svc) {
				continue
			}
			got, err := s.ports.allocate(ctx, p.NodePort, owner, avoid)
			if err != nil && !errors.Is(err, errPortOwned) {
				undo()
				return nil, nil, s.nodePortError(svc, i, err)
			}
			if err == nil {
				taken = append(taken, got)
			}
			p.NodePort = got
			inUse[got] = true
			avoid[got] = true
		}
	}
	for p := range held {
		if !inUse[p] {
			freed = append(freed, p)
		}
	}
	return undo, freed, nil
}

func (s *Server) nodePortError(svc *corev1.Service, i int, err error) error {
	p := svc.Spec.Ports[i].NodePort
	path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
	switch {
	case errors.Is(err, errPortRange):
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, field.ErrorList{field.Invalid(path, p,
			fmt.Sprintf("%v; the range of valid ports is %s", err, s.ports))})
	case errors.Is(err, errPortTaken):
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, field.ErrorList{field.Invalid(path, p, err.Error())})
	case errors.Is(err, errPortFull):
		return apierrors.NewInternalError(fmt.Errorf("failed to allocate a node port: %w", err))
	}
	return err
}

// releaseNodePorts frees ports held by svc.
func (s *Server) releaseNodePorts(ctx context.Context, svc *corev1.Service, ports []int32) {
	for _, p := range ports {
		if p == 0 {
			continue
		}
		s.ports.release(context.WithoutCancel(ctx), p, svc.Namespace+"/"+svc.Name)
	}
}
