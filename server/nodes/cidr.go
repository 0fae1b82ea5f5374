package nodes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/minik-dev/minik/server/internal/ranges"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// cidrKeyPrefix is where allocated podCIDRs are recorded: one key per /24
// ("/registry/ranges/podcidrs/10.42.3.0-24"), created atomically, whose
// value is the node's name. So two registrations can never share a range,
// and a restarted server gives a node the range it had.
const cidrKeyPrefix = registry.PodCIDRsPrefix

// nodeCIDRBits is the size of a node's podCIDR.
const nodeCIDRBits = 24

var errCIDRFull = errors.New("cluster CIDR is full")

// cidrAllocator hands out one /24 of the cluster CIDR per node. Its
// range's item i is the cluster CIDR's i-th /24.
type cidrAllocator struct {
	st     store.Store
	r      *ranges.Range
	prefix netip.Prefix
}

func newCIDRAllocator(st store.Store, prefix netip.Prefix) *cidrAllocator {
	a := &cidrAllocator{st: st, prefix: prefix}
	a.r = ranges.New(st, cidrKeyPrefix, uint32(1)<<(nodeCIDRBits-prefix.Bits()), func(i uint32) string {
		return strings.Replace(a.subnet(i).String(), "/", "-", 1)
	})
	return a
}

// subnet is the cluster CIDR's i-th /24.
func (a *cidrAllocator) subnet(i uint32) netip.Prefix {
	base := a.prefix.Addr().As4()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(base[:])+i<<(32-nodeCIDRBits))
	return netip.PrefixFrom(netip.AddrFrom4(b), nodeCIDRBits)
}

// owned returns the ranges recorded for node, keyed by store key.
func (a *cidrAllocator) owned(ctx context.Context, node string) ([]store.KV, error) {
	return a.r.Owned(ctx, node)
}

// allocate returns node's podCIDR, taking the lowest free /24 if it has
// none.
func (a *cidrAllocator) allocate(ctx context.Context, node string) (netip.Prefix, error) {
	mine, err := a.owned(ctx, node)
	if err != nil {
		return netip.Prefix{}, err
	}
	if len(mine) > 0 {
		return rangeOf(mine[0].Key)
	}
	return a.take(ctx, node)
}

// claim is allocate for a node about to use its range: a range it already
// has is written again, so that its ModRevision is new and a sweep that
// read it before cannot delete it (see sweep).
func (a *cidrAllocator) claim(ctx context.Context, node string) (netip.Prefix, error) {
	for range maxConflictRetries {
		mine, err := a.owned(ctx, node)
		if err != nil {
			return netip.Prefix{}, err
		}
		if len(mine) == 0 {
			return a.take(ctx, node)
		}
		_, err = a.st.Update(ctx, mine[0].Key, mine[0].Value, mine[0].ModRevision)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue // swept or claimed concurrently: look again
		}
		if err != nil {
			return netip.Prefix{}, err
		}
		return rangeOf(mine[0].Key)
	}
	return netip.Prefix{}, fmt.Errorf("podCIDR of node %q: %w", node, store.ErrConflict)
}

// take records the lowest free /24 as node's.
func (a *cidrAllocator) take(ctx context.Context, node string) (netip.Prefix, error) {
	i, err := a.r.TakeFree(ctx, 0, node, nil, nil)
	switch {
	case errors.Is(err, ranges.ErrFull):
		return netip.Prefix{}, errCIDRFull
	case err != nil:
		return netip.Prefix{}, err
	}
	return a.subnet(i), nil
}

// rangeOf returns the range a key under cidrKeyPrefix records.
func rangeOf(key string) (netip.Prefix, error) {
	return netip.ParsePrefix(strings.Replace(strings.TrimPrefix(key, cidrKeyPrefix), "-", "/", 1))
}

// release frees the ranges recorded for node before revision before (0:
// all), so that a range taken after the Node's deletion stays taken.
func (a *cidrAllocator) release(ctx context.Context, node string, before int64) error {
	mine, err := a.owned(ctx, node)
	if err != nil {
		return err
	}
	for _, kv := range mine {
		if before > 0 && kv.ModRevision >= before {
			continue
		}
		_, _, err := a.st.Delete(ctx, kv.Key, kv.ModRevision)
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// nodesPrefix is where Node objects live.
const nodesPrefix = registry.Root + "nodes/"

// watchNodes releases the podCIDR and the name binding of each deleted
// Node and forgets its heartbeats, until ctx ends. A watch that fails is
// started again from the current revision.
func (s *Service) watchNodes(ctx context.Context) error {
	for ctx.Err() == nil {
		ch, err := s.st.Watch(ctx, nodesPrefix, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for ev := range ch {
			if ev.Type != store.EventDelete {
				continue
			}
			node := strings.TrimPrefix(ev.Key, nodesPrefix)
			s.beats.forget(node)
			err := s.cidrs.release(ctx, node, ev.Revision)
			if err == nil {
				err = s.unbind(ctx, node, ev.Revision)
			}
			if err != nil && ctx.Err() == nil {
				s.lg.Warn("releasing a deleted node's podCIDR and name", "node", node, "err", err)
				continue
			}
			s.lg.Info("node deleted; podCIDR and name released", "node", node)
		}
	}
	return nil
}
