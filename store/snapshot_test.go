package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// writeWhile creates keys "/w/G-N" from writers goroutines until stop is
// closed, and returns every key with the revision of its creation.
func writeWhile(t *testing.T, s store.Store, writers int, stop <-chan struct{}) func() map[string]int64 {
	t.Helper()
	var (
		mu   sync.Mutex
		revs = map[string]int64{}
		wg   sync.WaitGroup
	)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("/w/%d-%d", g, n)
				rev, err := s.Create(context.Background(), key, []byte(key))
				if err != nil {
					t.Errorf("Create(%q) = %v", key, err)
					return
				}
				mu.Lock()
				revs[key] = rev
				mu.Unlock()
			}
		}()
	}
	return func() map[string]int64 {
		wg.Wait()
		return revs
	}
}

// waitRevision waits until s has committed revision min.
func waitRevision(t *testing.T, s store.Store, min int64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		rev, err := s.CurrentRevision(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rev >= min {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision %d after %v, want %d", rev, waitTimeout, min)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSnapshotWhileWriting takes a snapshot while writers commit and
// checks that the restored store holds exactly the writes up to the
// snapshot's revision.
func TestSnapshotWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "live.db"), store.Options{})
	defer closeStore(t, s)

	stop := make(chan struct{})
	wait := writeWhile(t, s, 4, stop)
	// Let some writes commit before the copy, and some during it.
	waitRevision(t, s, 200)
	var buf bytes.Buffer
	snapRev, err := s.Snapshot(ctx, &buf)
	if err != nil {
		t.Fatalf("Snapshot() = %v", err)
	}
	waitRevision(t, s, snapRev+200)
	close(stop)
	revs := wait()

	want := map[string]int64{}
	for k, rev := range revs {
		if rev <= snapRev {
			want[k] = rev
		}
	}
	path := filepath.Join(dir, "restored.db")
	res, err := store.Restore(ctx, &buf, path, 1000)
	if err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	if res.SnapshotRevision != snapRev {
		t.Errorf("Restore().SnapshotRevision = %d, want %d", res.SnapshotRevision, snapRev)
	}
	r := open(t, path, store.Options{})
	defer closeStore(t, r)
	kvs, _, err := r.List(ctx, "/w/", 0)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	got := map[string]int64{}
	for _, kv := range kvs {
		got[kv.Key] = kv.ModRevision
		if string(kv.Value) != kv.Key {
			t.Errorf("restored %q = %q, want %q", kv.Key, kv.Value, kv.Key)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restored keys and revisions (-want +got):\n%s", diff)
	}
}

// TestRestoreRevisionMovesOn checks that a restored store never reuses a
// revision the live store gave out after the snapshot, and that lists
// and watches from such revisions fail with ErrCompacted, so clients
// relist instead of trusting what they hold.
func TestRestoreRevisionMovesOn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "live.db"), store.Options{})
	for i := range 5 {
		if _, err := s.Create(ctx, fmt.Sprintf("/a/%d", i), []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	snapRev, err := s.Snapshot(ctx, &buf)
	if err != nil {
		t.Fatalf("Snapshot() = %v", err)
	}
	var seen int64 // the last revision a client of the live store saw
	for i := range 5 {
		if seen, err = s.Update(ctx, fmt.Sprintf("/a/%d", i), []byte("after"), 0); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)

	const bump = 1000
	path := filepath.Join(dir, "restored.db")
	res, err := store.Restore(ctx, &buf, path, bump)
	if err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	if want := snapRev + bump; res.Revision != want {
		t.Errorf("Restore().Revision = %d, want %d", res.Revision, want)
	}
	r := open(t, path, store.Options{})
	defer closeStore(t, r)

	rev, err := r.Create(ctx, "/a/new", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if rev <= seen || rev != res.Revision+1 {
		t.Errorf("first write after restore got revision %d, want %d (above %d seen before)", rev, res.Revision+1, seen)
	}
	kv, err := r.Get(ctx, "/a/0")
	if err != nil {
		t.Fatal(err)
	}
	if string(kv.Value) != "before" {
		t.Errorf("restored /a/0 = %q, want the snapshot's %q", kv.Value, "before")
	}
	if _, _, err := r.List(ctx, "/a/", seen); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("List(rev %d seen before the restore) = %v, want ErrCompacted", seen, err)
	}
	if _, err := r.Watch(ctx, "/a/", seen); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch(rev %d seen before the restore) = %v, want ErrCompacted", seen, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, err := r.Watch(wctx, "/a/", res.Revision); err != nil {
		t.Errorf("Watch(rev %d, the restored one) = %v", res.Revision, err)
	}
}

// TestRestoreNotSnapshot: bytes that are no store leave no file behind.
func TestRestoreNotSnapshot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", bytes.Repeat([]byte("not a database "), 4096)},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.Restore(context.Background(), bytes.NewReader(tc.data), path, 0)
			if !errors.Is(err, store.ErrNotSnapshot) {
				t.Errorf("Restore(%s) = %v, want ErrNotSnapshot", tc.name, err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Errorf("Restore(%s) left %v in %s", tc.name, entries, dir)
			}
		})
	}
}

// TestEtcdSnapshot checks that an etcd snapshot is etcd's database with
// its SHA-256 trailer, holding the keys written before it.
func TestEtcdSnapshot(t *testing.T) {
	s := openEtcd(t, storetest.StartEtcd(t))
	ctx := t.Context()
	rev, err := s.Create(ctx, "/snap/a", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	snapRev, err := s.Snapshot(ctx, &buf)
	if err != nil {
		t.Fatalf("Snapshot() = %v", err)
	}
	if snapRev < rev {
		t.Errorf("Snapshot() revision %d, want at least %d", snapRev, rev)
	}
	data := buf.Bytes()
	if len(data) < sha256.Size {
		t.Fatalf("snapshot of %d bytes", len(data))
	}
	db, trailer := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if sum := sha256.Sum256(db); !bytes.Equal(sum[:], trailer) {
		t.Fatalf("snapshot trailer %x, want the SHA-256 of the rest %x", trailer, sum)
	}
	path := filepath.Join(t.TempDir(), "etcd.db")
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("snapshot is no bbolt file: %v", err)
	}
	defer bdb.Close()
	found := false
	bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			found = found || bytes.Contains(v, []byte("/snap/a"))
			return nil
		})
	})
	if !found {
		t.Errorf("etcd snapshot does not hold key /snap/a")
	}
}
