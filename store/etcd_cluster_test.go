package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// TestEtcdClusterMemberKilled writes through a store on a 3-member etcd
// cluster, kills the leader with SIGKILL, and expects writes to keep being
// acknowledged, and every acknowledged write to be readable and watched.
func TestEtcdClusterMemberKilled(t *testing.T) {
	const writers, before, after = 4, 200, 300
	c := storetest.StartEtcdCluster(t, 3)
	s := openEtcd(t, c.Endpoints...)
	start, err := s.CurrentRevision(t.Context())
	if err != nil {
		t.Fatalf("CurrentRevision() = %v", err)
	}
	events, err := s.Watch(t.Context(), "/k/", start)
	if err != nil {
		t.Fatalf("Watch() = %v", err)
	}

	var mu sync.Mutex
	acked := map[string]int64{} // key → revision of the acknowledged Create
	var n, failed atomic.Int64
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				k := fmt.Sprintf("/k/%d/%06d", w, i)
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				rev, err := s.Create(wctx, k, []byte("v"))
				cancel()
				if err != nil {
					failed.Add(1) // unacknowledged: it may or may not have happened
					continue
				}
				mu.Lock()
				acked[k] = rev
				mu.Unlock()
				n.Add(1)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	waitAcks(t, &n, before)
	leader := leaderIndex(t, c.Endpoints)
	c.Kill(leader)
	t.Logf("killed member %d (the leader) after %d writes", leader, n.Load())
	waitAcks(t, &n, n.Load()+after)
	stop()
	wg.Wait()
	t.Logf("%d writes acknowledged, %d failed", len(acked), failed.Load())

	kvs, _, err := s.List(t.Context(), "/k/", 0)
	if err != nil {
		t.Fatalf("List() after the kill = %v", err)
	}
	listed := map[string]int64{}
	for _, kv := range kvs {
		listed[kv.Key] = kv.ModRevision
	}
	for k, rev := range acked {
		if listed[k] != rev {
			t.Errorf("acknowledged %q at revision %d; List has revision %d", k, rev, listed[k])
		}
	}
	watched := watchAll(t, events, acked)
	if watched != len(acked) {
		t.Errorf("watch saw %d of %d acknowledged writes", watched, len(acked))
	}
}

// waitAcks waits until n reaches want, at most 30 seconds.
func waitAcks(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes acknowledged within 30s, want %d", n.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaderIndex returns the index of the member that leads the cluster.
func leaderIndex(t *testing.T, endpoints []string) int {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i, ep := range endpoints {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			t.Fatalf("Status(%s) = %v", ep, err)
		}
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no member is the leader")
	return 0
}

// watchAll reads events until every acknowledged key has been created,
// and returns how many were, checking each one's revision.
func watchAll(t *testing.T, events <-chan store.Event, acked map[string]int64) int {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	seen := 0
	for seen < len(acked) {
		select {
		case ev, ok := <-events:
			switch {
			case !ok:
				t.Errorf("watch closed after %d of %d writes", seen, len(acked))
				return seen
			case ev.Type == store.EventError:
				t.Errorf("watch ended: %v", ev.Err)
				return seen
			case ev.Type != store.EventCreate:
				continue
			}
			if rev, ok := acked[ev.Key]; ok {
				if rev != ev.Revision {
					t.Errorf("watch: %q at revision %d, acknowledged at %d", ev.Key, ev.Revision, rev)
				}
				seen++
			}
		case <-timer.C:
			t.Errorf("watch saw %d of %d writes within 20s", seen, len(acked))
			return seen
		}
	}
	return seen
}
