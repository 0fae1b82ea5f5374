// Package storetest checks store.Store implementations against the
// contract, and opens throwaway bbolt stores for other packages' tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/minik-dev/minik/store"
)

// waitTimeout bounds every wait for an event or a closed channel.
const waitTimeout = 10 * time.Second

// New opens a bbolt store in t.TempDir, with short progress and retry
// intervals, and closes it when the test ends.
func New(t testing.TB) *store.Bolt {
	t.Helper()
	return NewWith(t, store.Options{ProgressInterval: 50 * time.Millisecond})
}

// NewWith is New with the given options. A nil opts.Logger logs to t.
func NewWith(t testing.TB, opts store.Options) *store.Bolt {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	s, err := store.Open(filepath.Join(t.TempDir(), "minik.db"), opts)
	if err != nil {
		t.Fatalf("store.Open() = %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

// Suite runs the conformance tests against stores made by newStore. Each
// test gets a new, empty store and uses it alone. newStore should arrange
// to close the store at the end of the test; one test closes it first, so
// a second Close must be harmless.
//
// Besides the Store documentation, the suite expects what the bbolt
// backend does where the interface leaves a choice: Compact at or below
// the compacted revision succeeds and does nothing; Watch from a revision
// ahead of the current one starts with the first event after it; every
// method of a closed store fails with ErrClosed and its watch channels
// close; EventProgress reaches a caught-up watch within a few seconds.
func Suite(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"Revisions", testRevisions},
		{"ValueOwnership", testValueOwnership},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"ListPrefix", testListPrefix},
		{"ListPastRevisions", testListPastRevisions},
		{"ListPage", testListPage},
		{"ListPagePastRevisions", testListPagePastRevisions},
		{"Compact", testCompact},
		{"WatchEvents", testWatchEvents},
		{"WatchPrefix", testWatchPrefix},
		{"WatchFromPast", testWatchFromPast},
		{"WatchFuture", testWatchFuture},
		{"WatchConcurrentWriters", testWatchConcurrentWriters},
		{"WatchSlowReader", testWatchSlowReader},
		{"WatchCancel", testWatchCancel},
		{"WatchProgress", testWatchProgress},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// eventOpts compare events by content; Err is checked with errors.Is.
var eventOpts = cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(store.Event{}, "Err")}

func mustCreate(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Create(t.Context(), key, []byte(value))
	if err != nil {
		t.Fatalf("Create(%q) = %v", key, err)
	}
	return rev
}

func mustUpdate(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Update(t.Context(), key, []byte(value), 0)
	if err != nil {
		t.Fatalf("Update(%q) = %v", key, err)
	}
	return rev
}

func mustDelete(t *testing.T, s store.Store, key string) int64 {
	t.Helper()
	rev, _, err := s.Delete(t.Context(), key, 0)
	if err != nil {
		t.Fatalf("Delete(%q) = %v", key, err)
	}
	return rev
}

func currentRevision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.CurrentRevision(t.Context())
	if err != nil {
		t.Fatalf("CurrentRevision() = %v", err)
	}
	return rev
}

func watch(t *testing.T, ctx context.Context, s store.Store, prefix string, rev int64) <-chan store.Event {
	t.Helper()
	ch, err := s.Watch(ctx, prefix, rev)
	if err != nil {
		t.Fatalf("Watch(%q, %d) = %v", prefix, rev, err)
	}
	return ch
}

// nextEvent returns the next event other than EventProgress.
func nextEvent(t *testing.T, ch <-chan store.Event) store.Event {
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

// nextEvents returns the next n events other than EventProgress.
func nextEvents(t *testing.T, ch <-chan store.Event, n int) []store.Event {
	t.Helper()
	evs := make([]store.Event, 0, n)
	for range n {
		evs = append(evs, nextEvent(t, ch))
	}
	return evs
}

// expectClosed drains ch until it is closed and returns what it got.
func expectClosed(t *testing.T, ch <-chan store.Event) []store.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	var evs []store.Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timer.C:
			t.Fatalf("watch channel not closed within %v", waitTimeout)
		}
	}
}

// expectNext checks that the next event is want; written after a batch,
// a sentinel key proves nothing was repeated or left over before it.
func expectNext(t *testing.T, ch <-chan store.Event, want store.Event) {
	t.Helper()
	if diff := cmp.Diff(want, nextEvent(t, ch), eventOpts); diff != "" {
		t.Fatalf("next event (-want +got):\n%s", diff)
	}
}

func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", call, err, want)
	}
}

func key(prefix string, i int) string {
	return fmt.Sprintf("%s%04d", prefix, i)
}
