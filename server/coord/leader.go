package coord

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// leaderTTL is the lease of the leader's election key: a leader that dies
// is replaced about this long after its last renewal. leaderStopAfter is
// how long after the last acknowledged renewal a leader stops leading on
// its own: before etcd can expire the lease (renewals go out every TTL/3,
// so two are missed by then), which keeps two leaders from overlapping as
// long as a renewal's round trip takes less than TTL/3.
const (
	leaderTTL       = 6 // seconds
	leaderStopAfter = leaderTTL * time.Second * 2 / 3
	// campaignRetry is the pause after a failed term before campaigning
	// again.
	campaignRetry = time.Second
)

// Leading is work that runs only on the leader: it must return soon
// after ctx ends.
type Leading func(ctx context.Context) error

// leadership is whether this server leads, with its metrics and log
// lines.
type leadership struct {
	identity string // this server's advertised address
	lg       *slog.Logger
	leader   atomic.Bool
	gauge    prometheus.Gauge
	changes  prometheus.Counter
}

func newLeadership(identity string, lg *slog.Logger) *leadership {
	return &leadership{
		identity: identity, lg: lg.With("component", "leader"),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "minik_server_leader",
			Help: "1 while this server runs the controllers and the scheduler, else 0.",
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "minik_server_leader_transitions_total",
			Help: "Times this server became or stopped being the leader.",
		}),
	}
}

// Collectors returns the leadership metrics.
func (l *leadership) Collectors() []prometheus.Collector {
	return []prometheus.Collector{l.gauge, l.changes}
}

// Leading reports whether this server is the leader now. Safe for
// concurrent use.
func (l *leadership) Leading() bool { return l.leader.Load() }

// lead runs work as the leader until it returns.
func (l *leadership) lead(ctx context.Context, work Leading) error {
	l.setLeader(true)
	defer l.setLeader(false)
	return work(ctx)
}

func (l *leadership) setLeader(on bool) {
	if l.leader.Swap(on) == on {
		return
	}
	l.changes.Inc()
	if on {
		l.gauge.Set(1)
		l.lg.Info("became the leader: running controllers and scheduler", "server", l.identity)
	} else {
		l.gauge.Set(0)
		l.lg.Info("stopped leading: controllers and scheduler stopped", "server", l.identity)
	}
}

// elector runs work on one server of the cluster at a time: it campaigns
// for an election key in etcd.
type elector struct {
	*leadership
	cli *clientv3.Client
	key string // election prefix in etcd
}

func newElector(cli *clientv3.Client, key, identity string, lg *slog.Logger) *elector {
	return &elector{leadership: newLeadership(identity, lg), cli: cli, key: key}
}

// Lead runs work whenever this server is the leader, until ctx ends. It
// returns work's error when work fails while still leading.
func (e *elector) Lead(ctx context.Context, work Leading) error {
	for ctx.Err() == nil {
		err := e.term(ctx, work)
		if ctx.Err() != nil {
			return nil
		}
		var failed workError
		if errors.As(err, &failed) {
			return failed.err
		}
		e.lg.Warn("leader election interrupted; campaigning again", "err", err, "in", campaignRetry)
		select {
		case <-ctx.Done():
		case <-time.After(campaignRetry):
		}
	}
	return nil
}

// workError is the leader's work failing while it still leads.
type workError struct{ err error }

func (w workError) Error() string { return w.err.Error() }

// term campaigns on a fresh lease, runs work while the lease holds and
// gives leadership up when work returns.
func (e *elector) term(ctx context.Context, work Leading) error {
	// Revoking the lease deletes the election key: a successor need not
	// wait for the TTL.
	lease, acks, release, err := keepLease(ctx, e.cli, leaderTTL)
	if err != nil {
		return err
	}
	defer release()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lastAck atomic.Int64 // UnixNano of the last acknowledged renewal
	lastAck.Store(time.Now().UnixNano())
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		for range acks {
			lastAck.Store(time.Now().UnixNano())
		}
	}()
	sess, err := concurrency.NewSession(e.cli, concurrency.WithLease(lease), concurrency.WithContext(tctx))
	if err != nil {
		return err
	}
	el := concurrency.NewElection(sess, e.key)
	cctx, ccancel := context.WithCancel(tctx)
	go func() {
		select {
		case <-lost:
		case <-cctx.Done():
		}
		ccancel()
	}()
	err = el.Campaign(cctx, e.identity)
	ccancel()
	if err != nil {
		return err
	}
	if time.Since(time.Unix(0, lastAck.Load())) >= leaderStopAfter {
		return errors.New("election lease lapsed while campaigning")
	}
	keyGone := make(chan struct{})
	go e.watchKey(tctx, el.Key(), el.Rev(), keyGone)
	return e.leadTerm(tctx, work, lost, keyGone, &lastAck)
}

// watchKey closes gone when the election key is deleted (its lease
// revoked or expired) or cannot be found, and returns when ctx ends.
func (e *elector) watchKey(ctx context.Context, key string, rev int64, gone chan<- struct{}) {
	for ctx.Err() == nil {
		for resp := range e.cli.Watch(ctx, key, clientv3.WithRev(rev+1)) {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					close(gone)
					return
				}
			}
			if resp.Err() != nil {
				break // compacted past rev: check the key below
			}
			rev = max(rev, resp.Header.Revision)
		}
		if ctx.Err() != nil {
			return
		}
		got, err := e.cli.Get(ctx, key)
		if err != nil {
			continue
		}
		if len(got.Kvs) == 0 {
			close(gone)
			return
		}
		rev = got.Header.Revision
	}
}

// leadTerm runs work until ctx ends, the lease is lost, the election key is
// deleted or no renewal has been acknowledged for leaderStopAfter.
func (e *elector) leadTerm(ctx context.Context, work Leading, lost, keyGone <-chan struct{}, lastAck *atomic.Int64) error {
	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-lost:
				stop(errors.New("election lease lost"))
				return
			case <-keyGone:
				stop(errors.New("election key deleted"))
				return
			case <-t.C:
				if time.Since(time.Unix(0, lastAck.Load())) >= leaderStopAfter {
					stop(errors.New("election lease renewals unacknowledged"))
					return
				}
			}
		}
	}()
	e.setLeader(true)
	err := work(wctx)
	e.setLeader(false)
	if ctx.Err() == nil && wctx.Err() == nil && err != nil {
		return workError{err}
	}
	if cause := context.Cause(wctx); ctx.Err() == nil && cause != nil {
		return cause
	}
	return err
}
