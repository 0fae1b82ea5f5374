package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/scheduler"
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

// leading is work that runs only on the leader: it must return soon
// after ctx ends.
type leading func(ctx context.Context) error

// elector runs work on one server of the cluster at a time. With etcd it
// campaigns for an election key; without (bbolt, one server) it is always
// the leader.
type elector struct {
	cli      *clientv3.Client // nil: always the leader
	key      string           // election prefix in etcd
	identity string           // this server's advertised address
	lg       *slog.Logger
	leader   atomic.Bool
	gauge    prometheus.Gauge
	changes  prometheus.Counter
}

func newElector(cli *clientv3.Client, key, identity string, lg *slog.Logger) *elector {
	return &elector{
		cli: cli, key: key, identity: identity, lg: lg.With("component", "leader"),
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
func (e *elector) Collectors() []prometheus.Collector {
	return []prometheus.Collector{e.gauge, e.changes}
}

// Leading reports whether this server is the leader now. Safe for
// concurrent use.
func (e *elector) Leading() bool { return e.leader.Load() }

// Run runs work whenever this server is the leader, until ctx ends. It
// returns work's error when work fails while still leading.
func (e *elector) Run(ctx context.Context, work leading) error {
	if e.cli == nil {
		e.setLeader(true)
		defer e.setLeader(false)
		return work(ctx)
	}
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
func (e *elector) term(ctx context.Context, work leading) error {
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
	return e.lead(tctx, work, lost, keyGone, &lastAck)
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

// lead runs work until ctx ends, the lease is lost, the election key is
// deleted or no renewal has been acknowledged for leaderStopAfter.
func (e *elector) lead(ctx context.Context, work leading, lost, keyGone <-chan struct{}, lastAck *atomic.Int64) error {
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

func (e *elector) setLeader(on bool) {
	if e.leader.Swap(on) == on {
		return
	}
	e.changes.Inc()
	if on {
		e.gauge.Set(1)
		e.lg.Info("became the leader: running controllers and scheduler", "server", e.identity)
	} else {
		e.gauge.Set(0)
		e.lg.Info("stopped leading: controllers and scheduler stopped", "server", e.identity)
	}
}

// keepLease grants an etcd lease of ttl seconds and renews it until
// release, which revokes it so that the keys it holds go at once. acks
// closes when etcd lets the lease expire.
func keepLease(ctx context.Context, cli *clientv3.Client, ttl int64) (lease clientv3.LeaseID, acks <-chan *clientv3.LeaseKeepAliveResponse, release func(), err error) {
	granted, err := cli.Grant(ctx, ttl)
	if err != nil {
		return 0, nil, nil, err
	}
	kctx, cancel := context.WithCancel(ctx)
	release = func() {
		cancel()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		cli.Revoke(rctx, granted.ID)
		rcancel()
	}
	if acks, err = cli.KeepAlive(kctx, granted.ID); err != nil {
		release()
		return 0, nil, nil, err
	}
	return granted.ID, acks, release, nil
}

// fenced returns a copy of cfg whose requests fail once ctx ends: when a
// server stops leading, its control loops send nothing more, even from
// goroutines still winding down, so they cannot write beside a new leader.
func fenced(ctx context.Context, cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return fence{ctx: ctx, next: rt} })
	return c
}

// fencedBind binds pods in process as the loopback user, refusing once
// ctx ends, as the requests of a fenced client are.
func fencedBind(ctx context.Context, api *apiserver.Server) scheduler.BindFunc {
	return func(bctx context.Context, b *corev1.Binding) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("binding of pod %s/%s refused: this server no longer leads: %w", b.Namespace, b.Name, err)
		}
		return api.BindPod(bctx, apiserver.LoopbackUser, b)
	}
}

type fence struct {
	ctx  context.Context
	next http.RoundTripper
}

func (f fence) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := f.ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %s refused: this server no longer leads: %w", r.Method, r.URL.Path, err)
	}
	return f.next.RoundTrip(r)
}
