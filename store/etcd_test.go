package store_test

import (
	"errors"
	"fmt"
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

// TestEtcdAutoCompaction checks that the store compacts etcd by itself,
// keeping the window of recent revisions.
func TestEtcdAutoCompaction(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	s, err := store.OpenEtcd(t.Context(), store.EtcdOptions{
		Endpoints:          []string{endpoint},
		Prefix:             storetest.EtcdPrefix(t),
		CompactionWindow:   5,
		CompactionInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("OpenEtcd() = %v", err)
	}
	defer s.Close()
	first, err := s.Create(t.Context(), "/a/0", []byte("v"))
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	var last int64
	for i := 1; i < 20; i++ {
		if last, err = s.Create(t.Context(), fmt.Sprintf("/a/%d", i), []byte("v")); err != nil {
			t.Fatalf("Create() = %v", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := s.List(t.Context(), "/a/", first)
		if errors.Is(err, store.ErrCompacted) {
			break
		}
		if err != nil {
			t.Fatalf("List(%d) = %v, want nil or %v", first, err, store.ErrCompacted)
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision %d not compacted within 10s", first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := s.CompactedRevision(); c > last-5 {
		t.Errorf("CompactedRevision() = %d, want at most %d (window of 5 from %d)", c, last-5, last)
	}
	if _, _, err := s.List(t.Context(), "/a/", last-5); err != nil {
		t.Errorf("List(%d) inside the window = %v", last-5, err)
	}
}
