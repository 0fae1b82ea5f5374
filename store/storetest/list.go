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

// listPages reads prefix at rev in pages of limit keys from start on, each
// page from the key after the last one, at the revision of the first page
// (as API continue tokens do), and returns the keys read and that
// revision. It fails t unless every page but the last is full and says
// that more follow.
func listPages(t *testing.T, s store.Store, prefix, start string, rev int64, limit int) ([]store.KV, int64) {
	t.Helper()
	var all []store.KV
	for {
		page, at, more, err := s.ListPage(t.Context(), prefix, start, rev, limit)
		if err != nil {
			t.Fatalf("ListPage(%q, %q, %d, %d) = %v", prefix, start, rev, limit, err)
		}
		if rev != 0 && at != rev {
			t.Fatalf("ListPage(%q, %q, %d, %d) revision = %d, want %d", prefix, start, rev, limit, at, rev)
		}
		rev = at
		all = append(all, page...)
		if !more {
			return all, rev
		}
		if len(page) != limit {
			t.Fatalf("ListPage(%q, %q, %d, %d) = %d keys and more, want a full page", prefix, start, rev, limit, len(page))
		}
		start = page[len(page)-1].Key + "\x00"
	}
}

func testListPage(t *testing.T, s store.Store) {
	ctx := t.Context()
	var keys []string
	for i := range 7 {
		k := fmt.Sprintf("/p/%d", i)
		keys = append(keys, k)
		mustCreate(t, s, k, "v"+k)
	}
	mustCreate(t, s, "/o/1", "outside")
	mustCreate(t, s, "/q/1", "outside")
	want, cur, err := s.List(ctx, "/p/", 0)
	if err != nil {
		t.Fatalf("List(%q, 0) = %v", "/p/", err)
	}
	for _, limit := range []int{0, 1, 2, 3, 7, 8, 100} {
		got, at := listPages(t, s, "/p/", "", 0, limit)
		if at != cur {
			t.Errorf("pages of %d: revision %d, want %d", limit, at, cur)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("pages of %d (-want +got):\n%s", limit, diff)
		}
	}
	starts := []struct {
		start string
		want  []store.KV
	}{
		{"", want},
		{"/a", want},        // below the prefix: from its first key
		{keys[3], want[3:]}, // a key: from it on
		{"/p/3x", want[4:]}, // between keys
		{"/p/9", nil},       // after the last
		{"/z", nil},         // after the prefix
	}
	for _, tc := range starts {
		got, _, more, err := s.ListPage(ctx, "/p/", tc.start, 0, 0)
		if err != nil || more {
			t.Errorf("ListPage(%q, %q, 0, 0) = more %v, %v; want no more", "/p/", tc.start, more, err)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ListPage(%q, %q, 0, 0) (-want +got):\n%s", "/p/", tc.start, diff)
		}
		if n, err := s.Count(ctx, "/p/", tc.start, 0); err != nil || n != int64(len(tc.want)) {
			t.Errorf("Count(%q, %q, 0) = %d, %v; want %d", "/p/", tc.start, n, err, len(tc.want))
		}
	}
	if _, _, more, _ := s.ListPage(ctx, "/p/", keys[5], 0, 2); more {
		t.Errorf("ListPage(%q, %q, 0, 2) of the last 2 keys says more follow", "/p/", keys[5])
	}
	if _, _, _, err := s.ListPage(ctx, "/p/", "", cur+1, 2); !errors.Is(err, store.ErrFutureRevision) {
		t.Errorf("ListPage(%q, %d) = %v, want %v", "/p/", cur+1, err, store.ErrFutureRevision)
	}
}

// testListPagePastRevisions pages through every revision of a history
// from every start, as a continue token resumes a list after writes.
func testListPagePastRevisions(t *testing.T, s store.Store) {
	h := writeHistory(t, s, "/h/", 80)
	for _, rev := range h.revs {
		if rev == 0 {
			continue
		}
		for _, limit := range []int{1, 3} {
			got, _ := listPages(t, s, "/h/", "", rev, limit)
			if diff := cmp.Diff(h.snaps[rev], got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("pages of %d at revision %d (-want +got):\n%s", limit, rev, diff)
			}
		}
		for i, kv := range h.snaps[rev] {
			got, _, _, err := s.ListPage(t.Context(), "/h/", kv.Key, rev, 0)
			if err != nil {
				t.Fatalf("ListPage(%q, %q, %d, 0) = %v", "/h/", kv.Key, rev, err)
			}
			if diff := cmp.Diff(h.snaps[rev][i:], got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("ListPage(%q, %q, %d, 0) (-want +got):\n%s", "/h/", kv.Key, rev, diff)
			}
			if n, err := s.Count(t.Context(), "/h/", kv.Key, rev); err != nil || n != int64(len(h.snaps[rev])-i) {
				t.Fatalf("Count(%q, %q, %d) = %d, %v; want %d", "/h/", kv.Key, rev, n, err, len(h.snaps[rev])-i)
			}
		}
	}
	cur := currentRevision(t, s)
	if err := s.Compact(t.Context(), cur); err != nil {
		t.Fatalf("Compact(%d) = %v", cur, err)
	}
	if _, _, _, err := s.ListPage(t.Context(), "/h/", "", h.revs[1], 1); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("ListPage(%q, %d) after Compact(%d) = %v, want %v", "/h/", h.revs[1], cur, err, store.ErrCompacted)
	}
	if _, err := s.Count(t.Context(), "/h/", "", h.revs[1]); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Count(%q, %d) after Compact(%d) = %v, want %v", "/h/", h.revs[1], cur, err, store.ErrCompacted)
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
