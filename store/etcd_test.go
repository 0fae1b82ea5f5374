package store_test

import (
	"testing"
	"time"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// openEtcd opens a store on endpoints under a prefix of the test's own,
// closed when the test ends.
func openEtcd(t *testing.T, endpoints ...string) *store.Etcd {
	t.Helper()
	s, err := store.OpenEtcd(t.Context(), store.EtcdOptions{
		Endpoints:          endpoints,
		Prefix:             storetest.EtcdPrefix(t),
		DialTimeout:        5 * time.Second,
		CompactionInterval: -1,
	})
	if err != nil {
		t.Fatalf("OpenEtcd(%v) = %v", endpoints, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

// TestEtcdSuite runs the conformance suite on one etcd shared by the
// subtests, each under a prefix of its own.
func TestEtcdSuite(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	storetest.Suite(t, func(t *testing.T) store.Store { return openEtcd(t, endpoint) })
}
