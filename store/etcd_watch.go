package store

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdWatchBuffer is the capacity of an etcd watch's channel; the etcd
// client itself buffers whatever a slow reader has not taken yet.
const etcdWatchBuffer = 64

// Watch delivers the changes to keys with the given prefix made after
// revision rev; see Store.Watch. rev may be ahead of the current revision:
// the watch then starts with the first event after rev. EventProgress
// comes from etcd's progress notifications, as often as the cluster's
// --experimental-watch-progress-notify-interval (default 10 minutes).
// If the etcd member loses its leader the watch ends with an EventError;
// the caller watches again from its last revision.
func (s *Etcd) Watch(ctx context.Context, prefix string, rev int64) (<-chan Event, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if rev < 0 {
		return nil, fmt.Errorf("revision %d: %w", rev, errNegativeRevision)
	}
	start, err := s.watchStart(ctx, prefix, rev)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	stop := context.AfterFunc(s.bgCtx, cancel)
	wch := s.cli.Watch(wctx, s.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(start),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	ch := make(chan Event, etcdWatchBuffer)
	s.m.watchers.Inc()
	go func() {
		defer s.m.watchers.Dec()
		defer close(ch)
		defer stop()
		defer cancel()
		s.forward(wctx, wch, ch)
	}()
	return ch, nil
}

// watchStart returns the first revision to watch from for a watch after
// rev: the one after the current revision for 0. A rev below the
// compacted revision fails with ErrCompacted, as etcd would only say so
// once the watch has started.
func (s *Etcd) watchStart(ctx context.Context, prefix string, rev int64) (int64, error) {
	if rev == 0 {
		cur, err := s.CurrentRevision(ctx)
		if err != nil {
			return 0, err
		}
		return cur + 1, nil
	}
	resp, err := s.cli.Get(ctx, s.prefix+prefix, clientv3.WithCountOnly(), clientv3.WithRev(rev))
	switch {
	case errors.Is(err, rpctypes.ErrFutureRev):
	case err != nil:
		return 0, s.wrap(ctx, fmt.Sprintf("watch %q from revision %d", prefix, rev), err)
	default:
		s.seen(resp.Header.Revision)
	}
	return rev + 1, nil
}

// forward translates the responses of one etcd watch into events on ch
// until the watch or ctx ends.
func (s *Etcd) forward(ctx context.Context, wch clientv3.WatchChan, ch chan<- Event) {
	last := int64(0)
	for resp := range wch {
		if err := s.watchErr(ctx, resp); err != nil {
			s.lg.Debug("watch ended", "revision", last, "err", err)
			select {
			case ch <- Event{Type: EventError, Revision: last, Err: err}:
			case <-ctx.Done():
			}
			return
		}
		if resp.IsProgressNotify() {
			if !send(ctx, ch, Event{Type: EventProgress, Revision: resp.Header.Revision}) {
				return
			}
			continue
		}
		for _, ev := range resp.Events {
			e := s.event(ev)
			if !send(ctx, ch, e) {
				return
			}
			last = e.Revision
		}
	}
	// The etcd channel closes when ctx ends: the caller's or Close's.
	if s.closed.Load() {
		select {
		case ch <- Event{Type: EventError, Revision: last, Err: ErrClosed}:
		default:
		}
	}
}

// watchErr returns the error that ends the watch of resp, if any.
func (s *Etcd) watchErr(ctx context.Context, resp clientv3.WatchResponse) error {
	switch {
	case ctx.Err() != nil:
		return nil // the channel is about to close
	case resp.CompactRevision != 0:
		return fmt.Errorf("watch compacted at revision %d: %w", resp.CompactRevision, ErrCompacted)
	case resp.Canceled || resp.Err() != nil:
		return s.wrap(ctx, "watch", resp.Err())
	}
	return nil
}

func send(ctx context.Context, ch chan<- Event, ev Event) bool {
	select {
	case ch <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// event translates one etcd event; a put is a create when the key's
// create and mod revisions are the same.
func (s *Etcd) event(ev *clientv3.Event) Event {
	kv := s.kv(ev.Kv.Key, ev.Kv.Value, ev.Kv.CreateRevision, ev.Kv.ModRevision)
	e := Event{Key: kv.Key, Value: kv.Value, Revision: kv.ModRevision, CreateRevision: kv.CreateRevision}
	switch {
	case ev.Type == mvccpb.DELETE:
		e.Type = EventDelete
		if ev.PrevKv != nil {
			e.Value, e.PrevValue, e.CreateRevision = ev.PrevKv.Value, ev.PrevKv.Value, ev.PrevKv.CreateRevision
		}
	case kv.CreateRevision == kv.ModRevision:
		e.Type = EventCreate
	default:
		e.Type = EventUpdate
		if ev.PrevKv != nil {
			e.PrevValue = ev.PrevKv.Value
		}
	}
	return e
}
