package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/minik-dev/minik/store"
)

// datastore is what the server needs of a store backend: the Store itself
// and its metrics.
type datastore interface {
	store.Store
	Collectors() []prometheus.Collector
}

// openEtcd opens the store on the etcd cluster of cfg.DatastoreEndpoint,
// a comma-separated list of client URLs.
func openEtcd(ctx context.Context, cfg Config, lg *slog.Logger) (datastore, error) {
	var endpoints []string
	for _, e := range strings.Split(cfg.DatastoreEndpoint, ",") {
		if e = strings.TrimSpace(e); e != "" {
			endpoints = append(endpoints, e)
		}
	}
	st, err := store.OpenEtcd(ctx, store.EtcdOptions{
		Endpoints: endpoints,
		TLS: store.EtcdTLS{
			CAFile: cfg.DatastoreCAFile, CertFile: cfg.DatastoreCertFile, KeyFile: cfg.DatastoreKeyFile,
		},
		CompactionWindow: cfg.CompactionWindow,
		Logger:           lg,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the etcd datastore: %w", err)
	}
	return st, nil
}
