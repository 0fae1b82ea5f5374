package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/minik-dev/minik/store"
)

// writer performs writes and remembers the event each should produce. It
// must be the only writer of its keys.
type writer struct {
	t    *testing.T
	s    store.Store
	live map[string]store.KV
	evs  []store.Event
}

func newWriter(t *testing.T, s store.Store) *writer {
	return &writer{t: t, s: s, live: map[string]store.KV{}}
}

func (w *writer) create(key, value string) error {
	rev, err := w.s.Create(context.Background(), key, []byte(value))
	if err != nil {
		return fmt.Errorf("Create(%q) = %w", key, err)
	}
	w.live[key] = store.KV{Key: key, Value: []byte(value), CreateRevision: rev, ModRevision: rev}
	w.evs = append(w.evs, store.Event{
		Type: store.EventCreate, Key: key, Value: []byte(value), Revision: rev, CreateRevision: rev,
	})
	return nil
}

func (w *writer) update(key, value string) error {
	old := w.live[key]
	rev, err := w.s.Update(context.Background(), key, []byte(value), old.ModRevision)
	if err != nil {
		return fmt.Errorf("Update(%q, %d) = %w", key, old.ModRevision, err)
	}
	w.live[key] = store.KV{Key: key, Value: []byte(value), CreateRevision: old.CreateRevision, ModRevision: rev}
	w.evs = append(w.evs, store.Event{
		Type: store.EventUpdate, Key: key, Value: []byte(value), PrevValue: old.Value,
		Revision: rev, CreateRevision: old.CreateRevision,
	})
	return nil
}

func (w *writer) remove(key string) error {
	old := w.live[key]
	rev, _, err := w.s.Delete(context.Background(), key, old.ModRevision)
	if err != nil {
		return fmt.Errorf("Delete(%q, %d) = %w", key, old.ModRevision, err)
	}
	delete(w.live, key)
	w.evs = append(w.evs, store.Event{
		Type: store.EventDelete, Key: key, Value: old.Value, PrevValue: old.Value,
		Revision: rev, CreateRevision: old.CreateRevision,
	})
	return nil
}

// churn creates, updates and deletes n times on a few keys under prefix.
func (w *writer) churn(prefix string, n int) error {
	for i := range n {
		k := key(prefix, i%4)
		_, exists := w.live[k]
		var err error
		switch {
		case !exists:
			err = w.create(k, fmt.Sprintf("v%d", i))
		case i%7 == 6:
			err = w.remove(k)
		default:
			err = w.update(k, fmt.Sprintf("v%d", i))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// matching returns the events of evs under prefix, in revision order.
func matching(evs []store.Event, prefix string) []store.Event {
	var out []store.Event
	for _, ev := range evs {
		if strings.HasPrefix(ev.Key, prefix) {
			out = append(out, ev)
		}
	}
	slices.SortFunc(out, func(a, b store.Event) int { return int(a.Revision - b.Revision) })
	return out
}

func expectEvents(t *testing.T, ch <-chan store.Event, what string, want []store.Event) {
	t.Helper()
	got := nextEvents(t, ch, len(want))
	if diff := cmp.Diff(want, got, eventOpts); diff != "" {
		t.Fatalf("%s events (-want +got):\n%s", what, diff)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testWatchEvents(t *testing.T, s store.Store) {
	ch := watch(t, t.Context(), s, "/w/", 0)
	w := newWriter(t, s)
	must(t, w.create("/w/a", "v1"))
	must(t, w.update("/w/a", "v2"))
	must(t, w.remove("/w/a"))
	must(t, w.create("/w/a", "v3"))
	expectEvents(t, ch, `Watch("/w/", 0)`, w.evs)
}

func testWatchPrefix(t *testing.T, s store.Store) {
	prefixes := []string{"/wp/a/", "/wp/a", "/wp/b/", ""}
	chans := make([]<-chan store.Event, len(prefixes))
	for i, p := range prefixes {
		chans[i] = watch(t, t.Context(), s, p, 0)
	}
	w := newWriter(t, s)
	for _, k := range []string{"/wp/a/1", "/wp/ab", "/wp/b/1", "/wp/a/2", "/wp/b", "/x"} {
		must(t, w.create(k, "v"))
	}
	must(t, w.update("/wp/ab", "v2"))
	must(t, w.remove("/wp/a/1"))
	for _, p := range prefixes { // sentinels: the last event of each watch
		must(t, w.create(p+"~end", "end"))
	}
	for i, p := range prefixes {
		expectEvents(t, chans[i], fmt.Sprintf("Watch(%q, 0)", p), matching(w.evs, p))
	}
}

func testWatchFromPast(t *testing.T, s store.Store) {
	w := newWriter(t, s)
	must(t, w.churn("/wpa/", 30))
	from := w.evs[9].Revision
	ch := watch(t, t.Context(), s, "/wpa/", from)
	must(t, w.churn("/wpa/", 10)) // live events continue the replay
	expectEvents(t, ch, fmt.Sprintf("Watch(%q, %d)", "/wpa/", from), w.evs[10:])
}

func testWatchFuture(t *testing.T, s store.Store) {
	cur := currentRevision(t, s)
	ch := watch(t, t.Context(), s, "/wf/", cur+3)
	w := newWriter(t, s)
	must(t, w.churn("/wf/", 6))
	var want []store.Event
	for _, ev := range w.evs {
		if ev.Revision > cur+3 {
			want = append(want, ev)
		}
	}
	expectEvents(t, ch, fmt.Sprintf("Watch(%q, %d)", "/wf/", cur+3), want)
}

// testWatchConcurrentWriters checks that watches see every acknowledged
// write exactly once, in revision order, while many writers race.
func testWatchConcurrentWriters(t *testing.T, s store.Store) {
	const writers, ops = 8, 60
	start := currentRevision(t, s)
	prefixes := []string{"/wc/", "/wc/1/", "/wc/2/"}
	chans := make([]<-chan store.Event, len(prefixes))
	for i, p := range prefixes {
		chans[i] = watch(t, t.Context(), s, p, 0)
	}
	fromStart := watch(t, t.Context(), s, "/wc/", start)

	ws := make([]*writer, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = newWriter(t, s)
		wg.Go(func() { errs[i] = ws[i].churn(fmt.Sprintf("/wc/%d/", i), ops) })
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	var all []store.Event
	for _, w := range ws {
		all = append(all, w.evs...)
	}
	for i, p := range prefixes {
		expectEvents(t, chans[i], fmt.Sprintf("Watch(%q, 0)", p), matching(all, p))
	}
	expectEvents(t, fromStart, fmt.Sprintf("Watch(%q, %d)", "/wc/", start), matching(all, "/wc/"))

	end := newWriter(t, s)
	must(t, end.create("/wc/1/~end", "end"))
	must(t, end.create("/wc/2/~end", "end"))
	for i, p := range prefixes {
		expectEvents(t, chans[i], fmt.Sprintf("Watch(%q, 0) after the writers", p), matching(end.evs, p))
	}
}

// testWatchSlowReader leaves a watch unread while thousands of writes go
// by, then expects every one of them, in order.
func testWatchSlowReader(t *testing.T, s store.Store) {
	const writers, ops = 16, 250
	ch := watch(t, t.Context(), s, "/ws/", 0)
	ws := make([]*writer, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = newWriter(t, s)
		wg.Go(func() {
			for j := range ops {
				if errs[i] = ws[i].create(fmt.Sprintf("/ws/%02d/%04d", i, j), "v"); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	var all []store.Event
	for _, w := range ws {
		all = append(all, w.evs...)
	}
	want := matching(all, "/ws/")
	got := nextEvents(t, ch, len(want))
	for i := range want {
		if got[i].Revision != want[i].Revision || got[i].Key != want[i].Key {
			t.Fatalf("slow watch event %d = %v %q at %d, want %v %q at %d", i,
				got[i].Type, got[i].Key, got[i].Revision, want[i].Type, want[i].Key, want[i].Revision)
		}
	}
	end := newWriter(t, s)
	must(t, end.create("/ws/~end", "end"))
	expectEvents(t, ch, "slow watch after catching up", end.evs)
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	read := watch(t, ctx, s, "/wx/", 0)
	unread := watch(t, ctx, s, "/wx/", 0)
	w := newWriter(t, s)
	must(t, w.churn("/wx/", 300))
	expectEvents(t, read, "watch before cancel", w.evs[:1])
	cancel()
	expectClosed(t, read)
	var got []store.Event
	for _, ev := range expectClosed(t, unread) {
		if ev.Type != store.EventProgress {
			got = append(got, ev)
		}
	}
	if len(got) > len(w.evs) {
		t.Fatalf("cancelled watch got %d events, want at most %d", len(got), len(w.evs))
	}
	if diff := cmp.Diff(w.evs[:len(got)], got, eventOpts); diff != "" {
		t.Errorf("cancelled watch events (-want +got):\n%s", diff)
	}
}

func testWatchProgress(t *testing.T, s store.Store) {
	ch := watch(t, t.Context(), s, "/wpr/", 0)
	rev := mustCreate(t, s, "/elsewhere", "v")
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			switch {
			case !ok:
				t.Fatal("watch channel closed, want EventProgress")
			case ev.Type != store.EventProgress:
				t.Fatalf("event %v %q at %d, want only EventProgress", ev.Type, ev.Key, ev.Revision)
			case ev.Revision >= rev:
				return
			}
		case <-timer.C:
			t.Fatalf("no EventProgress at revision %d or later within %v", rev, waitTimeout)
		}
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev := mustCreate(t, s, "/x/a", "v")
	ch := watch(t, ctx, s, "/x/", 0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	expectClosed(t, ch)
	_, err := s.Create(ctx, "/x/b", nil)
	wantErr(t, "Create after Close", err, store.ErrClosed)
	_, err = s.Update(ctx, "/x/a", nil, rev)
	wantErr(t, "Update after Close", err, store.ErrClosed)
	_, _, err = s.Delete(ctx, "/x/a", rev)
	wantErr(t, "Delete after Close", err, store.ErrClosed)
	_, err = s.Get(ctx, "/x/a")
	wantErr(t, "Get after Close", err, store.ErrClosed)
	_, _, err = s.List(ctx, "/x/", 0)
	wantErr(t, "List after Close", err, store.ErrClosed)
	_, err = s.Watch(ctx, "/x/", 0)
	wantErr(t, "Watch after Close", err, store.ErrClosed)
	_, err = s.CurrentRevision(ctx)
	wantErr(t, "CurrentRevision after Close", err, store.ErrClosed)
	err = s.Compact(ctx, rev)
	wantErr(t, "Compact after Close", err, store.ErrClosed)
}
