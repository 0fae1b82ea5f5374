package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	commitSeconds prometheus.Histogram
	groupSize     prometheus.Histogram
	watchers      prometheus.Gauge
	revision      prometheus.GaugeFunc
	compacted     prometheus.GaugeFunc
}

func newMetrics(s *Bolt) *metrics {
	return &metrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "minik_store_commit_duration_seconds",
			Help:    "Time to apply and fsync one group of writes.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "minik_store_commit_group_size",
			Help:    "Writes committed together in one transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "minik_store_watchers",
			Help: "Open watch channels.",
		}),
		revision: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "minik_store_revision",
			Help: "Revision of the last committed write.",
		}, func() float64 { return float64(s.rev.Load()) }),
		compacted: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "minik_store_compacted_revision",
			Help: "Revision below which history has been discarded.",
		}, func() float64 { return float64(s.compacted.Load()) }),
	}
}

func (m *metrics) observeCommit(d time.Duration, writes int) {
	m.commitSeconds.Observe(d.Seconds())
	m.groupSize.Observe(float64(writes))
}

// Collectors returns the store's Prometheus collectors (commit latency and
// group size histograms, watcher count, current and compacted revision)
// for the caller to register. Each call returns the same collectors.
func (s *Bolt) Collectors() []prometheus.Collector {
	m := s.m
	return []prometheus.Collector{m.commitSeconds, m.groupSize, m.watchers, m.revision, m.compacted}
}
