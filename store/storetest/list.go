package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/minik-dev/minik/store"
)

func testListPrefix(t *testing.T, s store.Store) {
	ctx := t.Context()
	revs := map[string]int64{}
	for _, k := range []string{"/l/b/2", "/l/a/1", "/l/b/1", "/l/ab", "/l/a/2", "/m/a"} {
		revs[k] = mustCreate(t, s, k, "v"+k)
	}
	kv := func(k string) store.KV {
		return store.KV{Key: k, Value: []byte("v" + k), CreateRevision: revs[k], ModRevision: revs[k]}
	}
	tests := []struct {
		prefix string
		want   []store.KV
	}{
		{"/l/a/", []store.KV{kv("/l/a/1"), kv("/l/a/2")}},
		{"/l/a", []store.KV{kv("/l/a/1"), kv("/l/a/2"), kv("/l/ab")}},
		{"/l/", []store.KV{kv("/l/a/1"), kv("/l/a/2"), kv("/l/ab"), kv("/l/b/1"), kv("/l/b/2")}},
		{"/l/b/1", []store.KV{kv("/l/b/1")}},
		{"/l/c", nil},
		{"/n", nil},
	}
	cur := currentRevision(t, s)
	for _, tc := range tests {
		got, rev, err := s.List(ctx, tc.prefix, 0)
		if err != nil {
			t.Errorf("List(%q, 0) = %v", tc.prefix, err)
			continue
		}
		if rev != cur {
			t.Errorf("List(%q, 0) revision = %d, want %d", tc.prefix, rev, cur)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("List(%q, 0) (-want +got):\n%s", tc.prefix, diff)
		}
	}
	if _, _, err := s.List(ctx, "/l/", cur+1); !errors.Is(err, store.ErrFutureRevision) {
		t.Errorf("List(%q, %d) = %v, want %v", "/l/", cur+1, err, store.ErrFutureRevision)
	}
}

// history is a model of the store: the expected List result of a prefix
// at every revision a scripted sequence of writes went through.
type history struct {
	live  map[string]store.KV
	snaps map[int64][]store.KV // revision → sorted KVs under the prefix
	revs  []int64
	other []int64 // revisions of the writes under otherPrefix(prefix)
}

// otherPrefix is where writeHistory makes noise: "/h/" → "/h~other/".
func otherPrefix(prefix string) string {
	return strings.TrimSuffix(prefix, "/") + "~other/"
}

func (h *history) record(rev int64) {
	var kvs []store.KV
	for _, kv := range h.live {
		kvs = append(kvs, kv)
	}
	slices.SortFunc(kvs, func(a, b store.KV) int { return strings.Compare(a.Key, b.Key) })
	h.snaps[rev] = kvs
	h.revs = append(h.revs, rev)
}

// writeHistory runs n random creates, updates and deletes on a few keys
// under prefix (and some outside it) and records the model after each.
func writeHistory(t *testing.T, s store.Store, prefix string, n int) *history {
	h := &history{live: map[string]store.KV{}, snaps: map[int64][]store.KV{}}
	h.record(currentRevision(t, s))
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		if i%5 == 4 { // noise outside the prefix
			h.other = append(h.other, mustCreate(t, s, key(otherPrefix(prefix), i), "x"))
			h.record(currentRevision(t, s))
			continue
		}
		k := key(prefix, rnd.IntN(8))
		value := fmt.Sprintf("value %d", i)
		old, exists := h.live[k]
		switch {
		case !exists:
			rev := mustCreate(t, s, k, value)
			h.live[k] = store.KV{Key: k, Value: []byte(value), CreateRevision: rev, ModRevision: rev}
		case rnd.IntN(3) == 0:
			mustDelete(t, s, k)
			delete(h.live, k)
		default:
			rev := mustUpdate(t, s, k, value)
			h.live[k] = store.KV{Key: k, Value: []byte(value), CreateRevision: old.CreateRevision, ModRevision: rev}
		}
		h.record(currentRevision(t, s))
	}
	return h
}

func testListPastRevisions(t *testing.T, s store.Store) {
	h := writeHistory(t, s, "/h/", 120)
	for _, rev := range h.revs {
		if rev == 0 {
			continue // List(prefix, 0) means the current revision
		}
		// A revision of a write outside the prefix lists the same as the
		// one before it; the model recorded both.
		got, at, err := s.List(t.Context(), "/h/", rev)
		if err != nil {
			t.Fatalf("List(%q, %d) = %v", "/h/", rev, err)
		}
		if at != rev && rev != 0 {
			t.Errorf("List(%q, %d) revision = %d, want %d", "/h/", rev, at, rev)
		}
		if diff := cmp.Diff(h.snaps[rev], got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("List(%q, %d) (-want +got):\n%s", "/h/", rev, diff)
		}
	}
}

func testCompact(t *testing.T, s store.Store) {
	ctx := t.Context()
	h := writeHistory(t, s, "/c/", 40)
	mid := h.revs[len(h.revs)/2]
	cur := currentRevision(t, s)

	if err := s.Compact(ctx, cur+1); !errors.Is(err, store.ErrFutureRevision) {
		t.Errorf("Compact(%d) above current %d = %v, want %v", cur+1, cur, err, store.ErrFutureRevision)
	}
	if err := s.Compact(ctx, mid); err != nil {
		t.Fatalf("Compact(%d) = %v", mid, err)
	}
	if err := s.Compact(ctx, mid-3); err != nil {
		t.Errorf("Compact(%d) below compacted %d = %v, want nil", mid-3, mid, err)
	}
	for _, rev := range []int64{1, mid - 1} {
		if _, _, err := s.List(ctx, "/c/", rev); !errors.Is(err, store.ErrCompacted) {
			t.Errorf("List(%q, %d) after Compact(%d) = %v, want %v", "/c/", rev, mid, err, store.ErrCompacted)
		}
		if _, err := s.Watch(ctx, "/c/", rev); !errors.Is(err, store.ErrCompacted) {
			t.Errorf("Watch(%q, %d) after Compact(%d) = %v, want %v", "/c/", rev, mid, err, store.ErrCompacted)
		}
	}
	for _, rev := range []int64{mid, mid + 1, cur, 0} {
		want := h.snaps[rev]
		if rev == 0 {
			want = h.snaps[cur]
		}
		got, _, err := s.List(ctx, "/c/", rev)
		if err != nil {
			t.Fatalf("List(%q, %d) after Compact(%d) = %v", "/c/", rev, mid, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("List(%q, %d) after Compact(%d) (-want +got):\n%s", "/c/", rev, mid, diff)
		}
	}
	// Watching from the compacted revision itself replays what followed.
	ch := watch(t, ctx, s, otherPrefix("/c/"), mid)
	var want []int64
	for _, rev := range h.other {
		if rev > mid {
			want = append(want, rev)
		}
	}
	var got []int64
	for _, ev := range nextEvents(t, ch, len(want)) {
		got = append(got, ev.Revision)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Watch(%q, %d) revisions (-want +got):\n%s", otherPrefix("/c/"), mid, diff)
	}
}
