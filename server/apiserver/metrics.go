package apiserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the API server's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watching prometheus.Gauge
	handler  http.Handler
}

// NewMetrics creates the API server's metrics in a new registry, together
// with the Go runtime and process collectors and any extra collectors (the
// store's, for instance), and serves them all.
func NewMetrics(extra ...prometheus.Collector) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "API requests by verb, resource and HTTP code.",
		}, []string{"verb", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "API request latency by verb and resource (watches excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"verb", "resource"}),
		watching: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apiserver_registered_watchers",
			Help: "Watch requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.watching,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range extra {
		reg.MustRegister(c)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

func (m *Metrics) observe(verb, resource string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(verb, resource, strconv.Itoa(code)).Inc()
	if verb != "watch" {
		m.latency.WithLabelValues(verb, resource).Observe(d.Seconds())
	}
}

func (m *Metrics) watchers(delta float64) {
	if m != nil {
		m.watching.Add(delta)
	}
}
