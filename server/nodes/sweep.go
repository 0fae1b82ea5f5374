package nodes

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/minik-dev/minik/store"
)

// DefaultRegistrationGrace is how long a registered name may go without
// a Node before its podCIDR and binding are given back (Config).
const DefaultRegistrationGrace = 2 * time.Minute

// sweepLoop gives back, every RegistrationGrace, the podCIDRs and name
// bindings of nodes that registered but never created their Node, until
// ctx ends. Only the leader sweeps (deleting by revision makes a sweep on
// several servers safe too, only wasted).
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RegistrationGrace)
	defer t.Stop()
	var prev int64 // revision of the last sweep's Node list; 0 = none yet
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.cfg.Leading != nil && !s.cfg.Leading() {
			prev = 0
			continue
		}
		rev, err := s.sweep(ctx, prev)
		if err != nil {
			if ctx.Err() == nil {
				s.lg.Warn("giving back the podCIDRs of nodes that never appeared", "err", err)
			}
			continue
		}
		prev = rev
	}
}

// sweep deletes the podCIDRs and bindings of names without a Node that
// were last written at or before revision prev (that of the previous
// sweep, so at least one period ago), and returns the revision of this
// sweep's Node list, the next sweep's prev. prev 0 deletes nothing.
//
// The race with a Node being created is closed by revisions, not clocks:
// reportNode rewrites the range (cidrAllocator.claim) just before it
// creates the Node, and every delete here is conditional on the
// ModRevision read. A claim after that read makes the delete fail; a
// claim before it but after the previous sweep leaves a ModRevision above
// prev, so the range is kept although the Node is not in this sweep's
// list. Only an agent that takes longer than a whole period between
// registering and reporting its Node loses its range (reportNode then
// allocates it one again).
func (s *Service) sweep(ctx context.Context, prev int64) (int64, error) {
	nodeKVs, rev, err := s.st.List(ctx, nodesPrefix, 0)
	if err != nil {
		return 0, err
	}
	if prev == 0 {
		return rev, nil
	}
	exists := make(map[string]bool, len(nodeKVs))
	for _, kv := range nodeKVs {
		exists[strings.TrimPrefix(kv.Key, nodesPrefix)] = true
	}
	ranges, _, err := s.st.List(ctx, cidrKeyPrefix, 0)
	if err != nil {
		return 0, err
	}
	bindings, _, err := s.st.List(ctx, bindingKeyPrefix, 0)
	if err != nil {
		return 0, err
	}
	freed := 0
	for _, kv := range ranges {
		node := string(kv.Value)
		if exists[node] || kv.ModRevision > prev {
			continue
		}
		if ok, err := s.deleteAt(ctx, kv); err != nil {
			return 0, err
		} else if ok {
			freed++
			s.lg.Info("podCIDR given back: its node never appeared", "node", node, "key", kv.Key)
		}
	}
	for _, kv := range bindings {
		if exists[strings.TrimPrefix(kv.Key, bindingKeyPrefix)] || kv.ModRevision > prev {
			continue
		}
		if _, err := s.deleteAt(ctx, kv); err != nil {
			return 0, err
		}
	}
	if freed > 0 {
		s.lg.Warn("podCIDRs given back from registrations without a Node", "count", freed)
	}
	return rev, nil
}

// deleteAt deletes kv if it is still at its ModRevision; ok is false if
// it changed or went meanwhile.
func (s *Service) deleteAt(ctx context.Context, kv store.KV) (ok bool, err error) {
	_, _, err = s.st.Delete(ctx, kv.Key, kv.ModRevision)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
