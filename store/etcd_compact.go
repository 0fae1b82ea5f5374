package store

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// runCompactor compacts etcd every CompactionInterval until ctx ends. It
// compacts to the revision it saw one interval earlier, held back to keep
// CompactionWindow revisions, so history covers both the window and the
// last interval. Several minik servers may run it on one cluster: a
// compaction already done by another is a no-op.
func (s *Etcd) runCompactor(ctx context.Context) {
	t := time.NewTicker(s.opts.CompactionInterval)
	defer t.Stop()
	var prev int64 // revision seen at the previous tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := s.CurrentRevision(ctx)
		if err != nil {
			s.lg.Warn("compaction skipped", "err", err)
			continue
		}
		target := min(prev, cur-s.opts.CompactionWindow)
		prev = cur
		if target <= s.compacted.Load() {
			continue
		}
		if err := s.Compact(ctx, target); err != nil {
			if ctx.Err() == nil {
				s.lg.Warn("compaction failed", "revision", target, "err", err)
			}
			continue
		}
		s.lg.Info("store compacted", "revision", target, "current", cur)
	}
}

// etcdMetrics are the Prometheus collectors of an Etcd store.
type etcdMetrics struct {
	requestSeconds *prometheus.HistogramVec
	watchers       prometheus.Gauge
	revision       prometheus.GaugeFunc
	compacted      prometheus.GaugeFunc
}

func newEtcdMetrics(s *Etcd) *etcdMetrics {
	return &etcdMetrics{
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "minik_store_etcd_request_duration_seconds",
			Help:    "Time for etcd to commit one write, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "minik_store_watchers",
			Help: "Open watch channels.",
		}),
		revision: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "minik_store_revision",
			Help: "Highest revision seen in an etcd response.",
		}, func() float64 { return float64(s.rev.Load()) }),
		compacted: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "minik_store_compacted_revision",
			Help: "Revision this server last compacted etcd to.",
		}, func() float64 { return float64(s.compacted.Load()) }),
	}
}

// observe records the duration of a write of kind op begun at start.
func (m *etcdMetrics) observe(op string, start time.Time) {
	m.requestSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// Collectors returns the store's Prometheus collectors (etcd write latency
// by operation, watcher count, last seen and compacted revision) for the
// caller to register. Each call returns the same collectors.
func (s *Etcd) Collectors() []prometheus.Collector {
	m := s.m
	return []prometheus.Collector{m.requestSeconds, m.watchers, m.revision, m.compacted}
}
