package store_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

const waitTimeout = 10 * time.Second

func TestSuite(t *testing.T) {
	storetest.Suite(t, func(t *testing.T) store.Store { return storetest.New(t) })
}

// TestSuiteTinyWindow runs the suite with one-event watch buffers and a
// tiny window, so watchers are set aside and caught up from the log all
// the time.
func TestSuiteTinyWindow(t *testing.T) {
	storetest.Suite(t, func(t *testing.T) store.Store {
		return storetest.NewWith(t, store.Options{WatchBuffer: 1, WindowSize: 8, ProgressInterval: 50 * time.Millisecond})
	})
}

// TestSuiteTinyBytes runs the suite with byte limits that every event
// passes: one event in a watcher's channel and in the window at a time.
func TestSuiteTinyBytes(t *testing.T) {
	storetest.Suite(t, func(t *testing.T) store.Store {
		return storetest.NewWith(t, store.Options{WatchBufferBytes: 1, WindowBytes: 1, ProgressInterval: 50 * time.Millisecond})
	})
}

func open(t *testing.T, path string, opts store.Options) *store.Bolt {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	return s
}

func closeStore(t *testing.T, s *store.Bolt) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
}

// createMany creates n keys under prefix from 16 goroutines and returns
// the revision of each, by key.
func createMany(t *testing.T, s store.Store, prefix string, n int) map[string]int64 {
	t.Helper()
	const writers = 16
	var mu sync.Mutex
	revs := make(map[string]int64, n)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				k := fmt.Sprintf("%s%06d", prefix, i)
				rev, err := s.Create(t.Context(), k, []byte("v"+k))
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				revs[k] = rev
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return revs
}

// TestReopen checks that objects, history, revisions and the compacted
// revision survive a restart, and that revisions are not reused.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "minik.db")
	s := open(t, path, store.Options{})
	first, err := s.Create(ctx, "/p/a", []byte("v1"))
	if err != nil {
		t.Fatalf("Create = %v", err)
	}
	second, err := s.Update(ctx, "/p/a", []byte("v2"), first)
	if err != nil {
		t.Fatalf("Update = %v", err)
	}
	if _, err := s.Create(ctx, "/p/b", []byte("b")); err != nil {
		t.Fatalf("Create = %v", err)
	}
	last, _, err := s.Delete(ctx, "/p/b", 0)
	if err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if err := s.Compact(ctx, first); err != nil {
		t.Fatalf("Compact(%d) = %v", first, err)
	}
	closeStore(t, s)

	s = open(t, path, store.Options{})
	defer closeStore(t, s)
	if rev, _ := s.CurrentRevision(ctx); rev != last {
		t.Errorf("CurrentRevision() after reopen = %d, want %d", rev, last)
	}
	if got := s.CompactedRevision(); got != first {
		t.Errorf("CompactedRevision() after reopen = %d, want %d", got, first)
	}
	got, err := s.Get(ctx, "/p/a")
	want := store.KV{Key: "/p/a", Value: []byte("v2"), CreateRevision: first, ModRevision: second}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("Get(%q) after reopen = %+v, %v, want %+v", "/p/a", got, err, want)
	}
	kvs, _, err := s.List(ctx, "/p/", second+1)
	if err != nil || len(kvs) != 2 {
		t.Errorf("List(%q, %d) after reopen = %v, %v, want 2 keys", "/p/", second+1, kvs, err)
	}
	ch, err := s.Watch(ctx, "/p/", first)
	if err != nil {
		t.Fatalf("Watch(%q, %d) after reopen = %v", "/p/", first, err)
	}
	for rev := second; rev <= last; rev++ {
		if ev := next(t, ch); ev.Revision != rev {
			t.Fatalf("Watch(%q, %d) after reopen: event at %d, want %d", "/p/", first, ev.Revision, rev)
		}
	}
	if rev, err := s.Create(ctx, "/p/c", nil); err != nil || rev != last+1 {
		t.Errorf("Create after reopen = %d, %v, want revision %d", rev, err, last+1)
	}
}

func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed, want an event")
			}
			if ev.Type != store.EventProgress {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no event within %v", waitTimeout)
		}
	}
}

// TestSlowWatcherCompacted leaves a watcher unread while the log it would
// need is compacted away: it must get what it had, then ErrCompacted.
func TestSlowWatcherCompacted(t *testing.T) {
	s := storetest.NewWith(t, store.Options{WatchBuffer: 4, WindowSize: 16, ProgressInterval: -1})
	ch, err := s.Watch(t.Context(), "/s/", 0)
	if err != nil {
		t.Fatalf("Watch = %v", err)
	}
	createMany(t, s, "/s/", 3000) // more than the buffer plus one catch-up batch
	cur, _ := s.CurrentRevision(t.Context())
	if err := s.Compact(t.Context(), cur); err != nil {
		t.Fatalf("Compact(%d) = %v", cur, err)
	}
	var last int64
	for {
		ev := next(t, ch)
		if ev.Type == store.EventError {
			if !errors.Is(ev.Err, store.ErrCompacted) {
				t.Errorf("EventError.Err = %v, want %v", ev.Err, store.ErrCompacted)
			}
			break
		}
		if ev.Revision != last+1 {
			t.Fatalf("event at revision %d after %d, want %d", ev.Revision, last, last+1)
		}
		last = ev.Revision
	}
	if last >= cur {
		t.Errorf("watcher got events up to %d, want it cut off before %d", last, cur)
	}
	select {
	case ev, ok := <-ch:
		if ok {
			t.Errorf("event %v after EventError, want the channel closed", ev.Type)
		}
	case <-time.After(waitTimeout):
		t.Fatal("channel not closed after EventError")
	}
}

// TestAutoCompaction lets the background compactor run with tiny windows.
func TestAutoCompaction(t *testing.T) {
	s := storetest.NewWith(t, store.Options{
		KeepRevisions:   10,
		KeepDuration:    time.Nanosecond,
		CompactInterval: 5 * time.Millisecond,
	})
	createMany(t, s, "/a/", 100)
	cur, _ := s.CurrentRevision(t.Context())
	deadline := time.Now().Add(waitTimeout)
	for s.CompactedRevision() != cur-10 {
		if time.Now().After(deadline) {
			t.Fatalf("CompactedRevision() = %d, want %d within %v", s.CompactedRevision(), cur-10, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := s.List(t.Context(), "/a/", cur-11); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("List(%q, %d) = %v, want %v", "/a/", cur-11, err, store.ErrCompacted)
	}
	if kvs, _, err := s.List(t.Context(), "/a/", cur-10); err != nil || len(kvs) != 90 {
		t.Errorf("List(%q, %d) = %d keys, %v, want 90", "/a/", cur-10, len(kvs), err)
	}
}

// TestCompactDeletesLog checks in the file that compaction removed every
// log record up to the compacted revision, across several batches.
func TestCompactDeletesLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "minik.db")
	s := open(t, path, store.Options{CompactInterval: -1})
	createMany(t, s, "/c/", 5000)
	const upTo = 4500
	if err := s.Compact(t.Context(), upTo); err != nil {
		t.Fatalf("Compact(%d) = %v", upTo, err)
	}
	closeStore(t, s)

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("log")).Cursor()
		k, _ := c.First()
		if first := binary.BigEndian.Uint64(k); first != upTo+1 {
			t.Errorf("first log record at revision %d, want %d", first, upTo+1)
		}
		if n := tx.Bucket([]byte("log")).Stats().KeyN; n != 5000-upTo {
			t.Errorf("log holds %d records, want %d", n, 5000-upTo)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestManyWatchers runs a thousand watchers on distinct prefixes, plus
// some on shared and nested ones, and checks each gets exactly its keys.
func TestManyWatchers(t *testing.T) {
	s := storetest.New(t)
	const n = 1000
	prefixes := make([]string, 0, n+2)
	for i := range n {
		prefixes = append(prefixes, fmt.Sprintf("/m/%04d/", i))
	}
	prefixes = append(prefixes, "/m/", "/m/00")
	chans := make([]<-chan store.Event, len(prefixes))
	for i, p := range prefixes {
		ch, err := s.Watch(t.Context(), p, 0)
		if err != nil {
			t.Fatalf("Watch(%q) = %v", p, err)
		}
		chans[i] = ch
	}
	keys := []int{7, 3, 999, 7, 42, 0, 500}
	for i, k := range keys {
		if _, err := s.Create(t.Context(), fmt.Sprintf("/m/%04d/%d", k, i), nil); err != nil {
			t.Fatalf("Create = %v", err)
		}
	}
	count := func(p string) int {
		c := 0
		for i, k := range keys {
			if key := fmt.Sprintf("/m/%04d/%d", k, i); len(key) >= len(p) && key[:len(p)] == p {
				c++
			}
		}
		return c
	}
	for i, p := range prefixes {
		for range count(p) {
			if ev := next(t, chans[i]); ev.Key[:len(p)] != p {
				t.Fatalf("Watch(%q) got key %q", p, ev.Key)
			}
		}
	}
	// A final write under every watched prefix proves nothing else was
	// queued before it.
	if _, err := s.Create(t.Context(), "/m/0000/end", nil); err != nil {
		t.Fatalf("Create = %v", err)
	}
	for _, i := range []int{0, n, n + 1} {
		if ev := next(t, chans[i]); ev.Key != "/m/0000/end" {
			t.Errorf("Watch(%q) next key = %q, want %q", prefixes[i], ev.Key, "/m/0000/end")
		}
	}
}

func TestCollectors(t *testing.T) {
	s := storetest.New(t)
	reg := prometheus.NewPedanticRegistry()
	for _, c := range s.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatalf("Register = %v", err)
		}
	}
	if _, err := s.Watch(t.Context(), "/", 0); err != nil {
		t.Fatalf("Watch = %v", err)
	}
	createMany(t, s, "/x/", 50)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	got := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		switch {
		case m.Histogram != nil:
			got[f.GetName()+"_count"] = float64(m.Histogram.GetSampleCount())
			got[f.GetName()+"_sum"] = m.Histogram.GetSampleSum()
		case m.Gauge != nil:
			got[f.GetName()] = m.Gauge.GetValue()
		}
	}
	if got["minik_store_commit_group_size_sum"] != 50 {
		t.Errorf("commit group sizes sum to %v, want 50", got["minik_store_commit_group_size_sum"])
	}
	if c := got["minik_store_commit_duration_seconds_count"]; c < 1 || c > 50 {
		t.Errorf("commits observed = %v, want 1..50", c)
	}
	if got["minik_store_watchers"] != 1 || got["minik_store_revision"] != 50 {
		t.Errorf("watchers, revision = %v, %v, want 1, 50", got["minik_store_watchers"], got["minik_store_revision"])
	}
}
