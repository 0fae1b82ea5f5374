package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/minik-dev/minik/store"
)

func testCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev := mustCreate(t, s, "/pods/a", "va")
	if _, err := s.Create(ctx, "/pods/a", []byte("again")); !errors.Is(err, store.ErrExists) {
		t.Errorf("Create(%q) twice = %v, want %v", "/pods/a", err, store.ErrExists)
	}
	empty := mustCreate(t, s, "/pods/empty", "")

	tests := []struct {
		key     string
		want    store.KV
		wantErr error
	}{
		{"/pods/a", store.KV{Key: "/pods/a", Value: []byte("va"), CreateRevision: rev, ModRevision: rev}, nil},
		{"/pods/empty", store.KV{Key: "/pods/empty", Value: []byte{}, CreateRevision: empty, ModRevision: empty}, nil},
		{"/pods/missing", store.KV{}, store.ErrNotFound},
		{"/pods/", store.KV{}, store.ErrNotFound},
	}
	for _, tc := range tests {
		got, err := s.Get(ctx, tc.key)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("Get(%q) = %v, want %v", tc.key, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Get(%q) (-want +got):\n%s", tc.key, diff)
		}
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	created := mustCreate(t, s, "/u/a", "v1")
	second := mustUpdate(t, s, "/u/a", "v2")
	tests := []struct {
		name     string
		key      string
		expected int64
		wantErr  error
	}{
		{"stale revision", "/u/a", created, store.ErrConflict},
		{"future revision", "/u/a", second + 100, store.ErrConflict},
		{"missing key", "/u/missing", 0, store.ErrNotFound},
		{"missing key with revision", "/u/missing", second, store.ErrNotFound},
		{"current revision", "/u/a", second, nil},
		{"no check", "/u/a", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := currentRevision(t, s)
			rev, err := s.Update(ctx, tc.key, []byte(tc.name), tc.expected)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update(%q, %d) = %v, want %v", tc.key, tc.expected, err, tc.wantErr)
			}
			if err != nil {
				if after := currentRevision(t, s); after != before {
					t.Errorf("CurrentRevision() after failed Update = %d, want %d", after, before)
				}
				return
			}
			want := store.KV{Key: tc.key, Value: []byte(tc.name), CreateRevision: created, ModRevision: rev}
			got, err := s.Get(ctx, tc.key)
			if err != nil {
				t.Fatalf("Get(%q) = %v", tc.key, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Get(%q) after Update (-want +got):\n%s", tc.key, diff)
			}
		})
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	created := mustCreate(t, s, "/d/a", "v1")
	updated := mustUpdate(t, s, "/d/a", "v2")

	if _, _, err := s.Delete(ctx, "/d/a", created); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Delete(%q, %d) = %v, want %v", "/d/a", created, err, store.ErrConflict)
	}
	if _, _, err := s.Delete(ctx, "/d/missing", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete(%q) = %v, want %v", "/d/missing", err, store.ErrNotFound)
	}
	rev, kv, err := s.Delete(ctx, "/d/a", updated)
	if err != nil {
		t.Fatalf("Delete(%q, %d) = %v", "/d/a", updated, err)
	}
	if rev <= updated {
		t.Errorf("Delete(%q) revision = %d, want > %d", "/d/a", rev, updated)
	}
	want := store.KV{Key: "/d/a", Value: []byte("v2"), CreateRevision: created, ModRevision: updated}
	if diff := cmp.Diff(want, kv); diff != "" {
		t.Errorf("Delete(%q) removed KV (-want +got):\n%s", "/d/a", diff)
	}
	if _, err := s.Get(ctx, "/d/a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%q) after Delete = %v, want %v", "/d/a", err, store.ErrNotFound)
	}
	if _, _, err := s.Delete(ctx, "/d/a", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete(%q) twice = %v, want %v", "/d/a", err, store.ErrNotFound)
	}
	again := mustCreate(t, s, "/d/a", "v3")
	got, err := s.Get(ctx, "/d/a")
	if err != nil {
		t.Fatalf("Get(%q) = %v", "/d/a", err)
	}
	want = store.KV{Key: "/d/a", Value: []byte("v3"), CreateRevision: again, ModRevision: again}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get(%q) after re-Create (-want +got):\n%s", "/d/a", diff)
	}
}

// testRevisions checks that each successful write gets a new, higher
// revision that CurrentRevision then reports, and failed writes none.
func testRevisions(t *testing.T, s store.Store) {
	ctx := t.Context()
	last := currentRevision(t, s)
	writes := []struct {
		name  string
		write func() (int64, error)
		ok    bool
	}{
		{"create", func() (int64, error) { return s.Create(ctx, "/r/a", []byte("1")) }, true},
		{"create exists", func() (int64, error) { return s.Create(ctx, "/r/a", []byte("1")) }, false},
		{"update", func() (int64, error) { return s.Update(ctx, "/r/a", []byte("2"), 0) }, true},
		{"update conflict", func() (int64, error) { return s.Update(ctx, "/r/a", []byte("2"), 1) }, false},
		{"update missing", func() (int64, error) { return s.Update(ctx, "/r/b", []byte("2"), 0) }, false},
		{"create other", func() (int64, error) { return s.Create(ctx, "/r/b", []byte("1")) }, true},
		{"delete", func() (int64, error) { rev, _, err := s.Delete(ctx, "/r/a", 0); return rev, err }, true},
		{"delete missing", func() (int64, error) { rev, _, err := s.Delete(ctx, "/r/a", 0); return rev, err }, false},
	}
	for _, w := range writes {
		rev, err := w.write()
		if (err == nil) != w.ok {
			t.Fatalf("%s: err = %v, want success %v", w.name, err, w.ok)
		}
		cur := currentRevision(t, s)
		if !w.ok {
			if cur != last {
				t.Errorf("%s: CurrentRevision() = %d, want unchanged %d", w.name, cur, last)
			}
			continue
		}
		if rev <= last {
			t.Errorf("%s: revision %d, want > %d", w.name, rev, last)
		}
		if cur != rev {
			t.Errorf("%s: CurrentRevision() = %d, want %d", w.name, cur, rev)
		}
		last = rev
	}
}

// testValueOwnership checks that the store copies values in and out.
func testValueOwnership(t *testing.T, s store.Store) {
	ctx := t.Context()
	value := []byte("original")
	if _, err := s.Create(ctx, "/o/a", value); err != nil {
		t.Fatalf("Create = %v", err)
	}
	copy(value, "XXXXXXXX")
	got, err := s.Get(ctx, "/o/a")
	if err != nil {
		t.Fatalf("Get(%q) = %v", "/o/a", err)
	}
	if string(got.Value) != "original" {
		t.Errorf("Get(%q) after caller changed its slice = %q, want %q", "/o/a", got.Value, "original")
	}
	copy(got.Value, "YYYYYYYY")
	kvs, _, err := s.List(ctx, "/o/", 0)
	if err != nil || len(kvs) != 1 {
		t.Fatalf("List(%q) = %v, %v", "/o/", kvs, err)
	}
	if string(kvs[0].Value) != "original" {
		t.Errorf("List(%q) after caller changed a Get result = %q, want %q", "/o/", kvs[0].Value, "original")
	}
}

// testConcurrentCreate races writers on one key: exactly one wins.
func testConcurrentCreate(t *testing.T, s store.Store) {
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Create(t.Context(), "/cc/a", fmt.Appendf(nil, "%d", i))
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrExists):
			t.Errorf("Create #%d = %v, want nil or %v", i, err, store.ErrExists)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent Creates succeeded, want 1", wins)
	}
}

// testConcurrentUpdate runs compare-and-swap increments from many
// goroutines: no increment may be lost, so each write must see the ones
// committed before it, also within one commit group.
func testConcurrentUpdate(t *testing.T, s store.Store) {
	const workers, increments = 16, 20
	rev := mustCreate(t, s, "/cu/counter", "0")
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { errs <- increment(t, s, "/cu/counter", increments) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	kv, err := s.Get(t.Context(), "/cu/counter")
	if err != nil {
		t.Fatalf("Get(%q) = %v", "/cu/counter", err)
	}
	if want := fmt.Sprint(workers * increments); string(kv.Value) != want {
		t.Errorf("Get(%q) = %q, want %q", "/cu/counter", kv.Value, want)
	}
	if kv.CreateRevision != rev {
		t.Errorf("Get(%q).CreateRevision = %d, want %d", "/cu/counter", kv.CreateRevision, rev)
	}
}

func increment(t *testing.T, s store.Store, key string, times int) error {
	for done := 0; done < times; {
		kv, err := s.Get(t.Context(), key)
		if err != nil {
			return fmt.Errorf("Get(%q) = %w", key, err)
		}
		var n int
		if _, err := fmt.Sscan(string(kv.Value), &n); err != nil {
			return fmt.Errorf("Get(%q) = %q, not a number", key, kv.Value)
		}
		_, err = s.Update(t.Context(), key, fmt.Append(nil, n+1), kv.ModRevision)
		switch {
		case err == nil:
			done++
		case !errors.Is(err, store.ErrConflict):
			return fmt.Errorf("Update(%q, %d) = %w", key, kv.ModRevision, err)
		}
	}
	return nil
}
