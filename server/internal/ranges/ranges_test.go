package ranges

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

func TestRange(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	r := New(st, "/registry/ranges/test/", 4, func(i uint32) string { return strconv.Itoa(100 + int(i)) })
	if err := r.Take(ctx, 1, "a"); err != nil {
		t.Fatalf("Take(1, a) = %v", err)
	}
	if err := r.Take(ctx, 1, "b"); !errors.Is(err, ErrTaken) {
		t.Errorf("Take(1, b) of a taken item = %v, want %v", err, ErrTaken)
	}
	if owner, _, err := r.Owner(ctx, 1); err != nil || owner != "a" {
		t.Errorf("Owner(1) = %q, %v; want a", owner, err)
	}
	if kv, err := st.Get(ctx, "/registry/ranges/test/101"); err != nil || string(kv.Value) != "a" {
		t.Errorf("record of item 1 = %v, %v; want a at /registry/ranges/test/101", kv, err)
	}
	// From 1 on, wrapping, skipping 2: 1 is taken, so 3, then 0.
	var seen []uint32
	skip2 := func(i uint32) bool { return i == 2 }
	for _, want := range []uint32{3, 0} {
		got, err := r.TakeFree(ctx, 1, "b", skip2, func(i uint32) error { seen = append(seen, i); return nil })
		if err != nil || got != want {
			t.Fatalf("TakeFree(from 1) = %d, %v; want %d", got, err, want)
		}
	}
	if len(seen) != 3 || seen[0] != 1 || seen[1] != 1 || seen[2] != 3 {
		t.Errorf("taken items reported = %v, want [1 1 3]", seen)
	}
	if _, err := r.TakeFree(ctx, 0, "c", skip2, nil); !errors.Is(err, ErrFull) {
		t.Errorf("TakeFree with only a skipped item free = %v, want %v", err, ErrFull)
	}
	stop := errors.New("stop")
	if got, err := r.TakeFree(ctx, 0, "c", skip2, func(uint32) error { return stop }); got != 0 || !errors.Is(err, stop) {
		t.Errorf("TakeFree whose taken hook fails = %d, %v; want 0, %v", got, err, stop)
	}
	owned, err := r.Owned(ctx, "b")
	if err != nil || len(owned) != 2 || owned[0].Key != "/registry/ranges/test/100" || owned[1].Key != "/registry/ranges/test/103" {
		t.Errorf("Owned(b) = %v, %v; want items 0 and 3", owned, err)
	}
	if err := r.ReleaseOwned(ctx, 1, "b"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("ReleaseOwned(1, b) of a's item = %v, want %v", err, store.ErrConflict)
	}
	if err := r.ReleaseOwned(ctx, 1, "a"); err != nil {
		t.Errorf("ReleaseOwned(1, a) = %v", err)
	}
	if err := r.ReleaseOwned(ctx, 1, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReleaseOwned of a free item = %v, want %v", err, store.ErrNotFound)
	}
	if err := r.Release(ctx, 0); err != nil {
		t.Errorf("Release(0) = %v", err)
	}
	if err := r.Release(ctx, 0); err != nil {
		t.Errorf("Release of a free item = %v, want nil", err)
	}
	if got, err := r.TakeFree(ctx, 0, "d", skip2, nil); err != nil || got != 0 {
		t.Errorf("TakeFree after releases = %d, %v; want 0", got, err)
	}
}
