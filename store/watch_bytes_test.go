package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// TestWindowAndWatchBytes checks that the window and a watcher's channel
// stay within their byte limits under large values, and that a watcher
// set aside for its channel's weight still gets every event, in order.
func TestWindowAndWatchBytes(t *testing.T) {
	const limit = 1 << 20
	s, err := Open(filepath.Join(t.TempDir(), "minik.db"), Options{
		WindowBytes: limit, WatchBufferBytes: limit, ProgressInterval: -1,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Watch(t.Context(), "/big/", 0)
	if err != nil {
		t.Fatal(err)
	}
	const writes = 64 // of 128 KiB, 8 MiB in all
	values := make([][]byte, writes)
	revs := make([]int64, writes)
	for i := range writes {
		values[i] = bytes.Repeat([]byte{byte('a' + i%26)}, 128<<10)
		if revs[i], err = s.Create(t.Context(), fmt.Sprintf("/big/%02d", i), values[i]); err != nil {
			t.Fatal(err)
		}
		if held := windowHeld(s.hub); held > limit {
			t.Fatalf("after %d writes the window holds %d bytes, want at most %d", i+1, held, limit)
		}
	}
	queued, want := 0, 0
	for range len(ch) {
		ev := <-ch
		queued += len(ev.Key) + len(ev.Value) + len(ev.PrevValue)
		if err := checkEvent(ev, revs[want], values[want]); err != nil {
			t.Fatal(err)
		}
		want++
	}
	if queued > limit {
		t.Errorf("the watcher's channel held %d bytes, want at most %d", queued, limit)
	}
	for ; want < writes; want++ {
		select {
		case ev := <-ch:
			if err := checkEvent(ev, revs[want], values[want]); err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for write %d within 10s", want)
		}
	}
}

// windowHeld is the bytes of keys and values of the window's events.
func windowHeld(h *hub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := 0
	for r := h.windowStart; r <= h.rev; r++ {
		ev := &h.window[r%int64(len(h.window))]
		held += len(ev.Key) + len(ev.Value) + len(ev.PrevValue)
	}
	return held
}

func checkEvent(ev Event, rev int64, value []byte) error {
	if ev.Revision != rev || !bytes.Equal(ev.Value, value) {
		return fmt.Errorf("event %v at revision %d (%d bytes), want the write at %d", ev.Type, ev.Revision, len(ev.Value), rev)
	}
	return nil
}

// TestWindowExpires checks that an idle store lets its window empty, and
// that a watch from before then still gets every event, from the log.
func TestWindowExpires(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "minik.db"), Options{
		WindowAge: 100 * time.Millisecond, ProgressInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Create(t.Context(), "/first", nil); err != nil { // so a watch can start before the writes
		t.Fatal(err)
	}
	const writes = 10
	values := make([][]byte, writes)
	revs := make([]int64, writes)
	for i := range writes {
		values[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
		if revs[i], err = s.Create(t.Context(), fmt.Sprintf("/big/%02d", i), values[i]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for windowHeld(s.hub) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the window of an idle store still holds %d bytes", windowHeld(s.hub))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ch, err := s.Watch(t.Context(), "/big/", revs[0]-1)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for i := 0; i < writes; {
		select {
		case ev := <-ch:
			if ev.Type == EventProgress {
				continue
			}
			if err := checkEvent(ev, revs[i], values[i]); err != nil {
				t.Fatal(err)
			}
			i++
		case <-timeout:
			t.Fatalf("no event for write %d within 10s", i)
		}
	}
}
