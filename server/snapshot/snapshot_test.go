package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/store"
)

func openStore(t *testing.T, path string) *store.Bolt {
	t.Helper()
	s, err := store.Open(path, store.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// liveStore returns a store holding keys /k/0 … /k/n-1.
func liveStore(t *testing.T, n int) *store.Bolt {
	t.Helper()
	s := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	for i := range n {
		if _, err := s.Create(context.Background(), fmt.Sprintf("/k/%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

var t0 = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

func save(t *testing.T, dir, name string, at time.Time, src snapshot.Source) snapshot.Meta {
	t.Helper()
	m, err := snapshot.Save(context.Background(), dir, name, snapshot.BackendBolt, at, src)
	if err != nil {
		t.Fatalf("Save(%q) = %v", name, err)
	}
	return m
}

func TestSaveListPrune(t *testing.T) {
	src := liveStore(t, 3)
	dir := filepath.Join(t.TempDir(), "snapshots")
	m := save(t, dir, "first", t0, src)
	if m.Revision != 3 || m.Size == 0 || len(m.SHA256) != 64 {
		t.Errorf("Save() = %+v, want revision 3, a size and a SHA-256", m)
	}
	for _, p := range []string{m.Path, m.Path + ".json"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if _, err := snapshot.Save(context.Background(), dir, "first", snapshot.BackendBolt, t0, src); !errors.Is(err, snapshot.ErrExists) {
		t.Errorf("Save(taken name) = %v, want ErrExists", err)
	}
	if _, err := snapshot.Save(context.Background(), dir, "../x", snapshot.BackendBolt, t0, src); !errors.Is(err, snapshot.ErrInvalidName) {
		t.Errorf("Save(\"../x\") = %v, want ErrInvalidName", err)
	}
	save(t, dir, "scheduled-2", t0.Add(2*time.Hour), src)
	save(t, dir, "scheduled-1", t0.Add(time.Hour), src)
	save(t, dir, "scheduled-3", t0.Add(3*time.Hour), src)

	if got, want := names(t, dir), []string{"scheduled-3", "scheduled-2", "scheduled-1", "first"}; !cmp.Equal(got, want) {
		t.Errorf("List() = %v, want %v", got, want)
	}
	deleted, err := snapshot.Prune(dir, snapshot.ScheduledPrefix, 1)
	if err != nil {
		t.Fatalf("Prune() = %v", err)
	}
	if len(deleted) != 2 {
		t.Errorf("Prune(scheduled, keep 1) deleted %d, want 2", len(deleted))
	}
	if got, want := names(t, dir), []string{"scheduled-3", "first"}; !cmp.Equal(got, want) {
		t.Errorf("List() after Prune = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "scheduled-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pruned snapshot file still there: %v", err)
	}
	if _, err := snapshot.Prune(dir, "", 0); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("Prune(keep 0) left %v", entries)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	metas, err := snapshot.List(dir)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	var out []string
	for _, m := range metas {
		out = append(out, m.Name)
	}
	return out
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	src := liveStore(t, 4)
	m := save(t, t.TempDir(), "snap", t0, src)
	if _, err := src.Create(ctx, "/k/later", []byte("v")); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "new")
	res, err := snapshot.Restore(ctx, m.Path, dataDir, snapshot.RestoreOptions{Bump: 100})
	if err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	if res.SnapshotRevision != 4 || res.Revision != 104 {
		t.Errorf("Restore() = %+v, want revisions 4 and 104", res)
	}
	fi, err := os.Stat(snapshot.StorePath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("restored store has mode %v, want 0600", fi.Mode().Perm())
	}
	r := openStore(t, snapshot.StorePath(dataDir))
	kvs, rev, err := r.List(ctx, "/k/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 4 || rev != 104 {
		t.Errorf("restored List() = %d keys at revision %d, want 4 at 104", len(kvs), rev)
	}
}

func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	m := save(t, t.TempDir(), "snap", t0, liveStore(t, 2))

	t.Run("non-empty data dir", func(t *testing.T) {
		dataDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dataDir, "token"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := snapshot.Restore(ctx, m.Path, dataDir, snapshot.RestoreOptions{})
		if !errors.Is(err, snapshot.ErrDataDirNotEmpty) {
			t.Fatalf("Restore(non-empty) = %v, want ErrDataDirNotEmpty", err)
		}
		if !strings.Contains(err.Error(), dataDir) {
			t.Errorf("Restore(non-empty) = %q, does not name %s", err, dataDir)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Restore(non-empty) wrote db: %v", err)
		}
	})

	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"flipped byte", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 4096); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := save(t, t.TempDir(), "bad", t0, liveStore(t, 2))
			tc.corrupt(t, bad.Path)
			dataDir := filepath.Join(t.TempDir(), "new")
			_, err := snapshot.Restore(ctx, bad.Path, dataDir, snapshot.RestoreOptions{})
			if !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("Restore(%s) = %v, want ErrCorrupt", tc.name, err)
			}
			if !strings.Contains(err.Error(), bad.Path) {
				t.Errorf("Restore(%s) = %q, does not name %s", tc.name, err, bad.Path)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Restore(%s) created %s: %v", tc.name, dataDir, err)
			}
		})
	}

	t.Run("no metadata", func(t *testing.T) {
		dir := t.TempDir()
		bare := filepath.Join(dir, "bare")
		if err := os.Link(m.Path, bare); err != nil {
			t.Fatal(err)
		}
		dataDir := filepath.Join(dir, "new")
		if _, err := snapshot.Restore(ctx, bare, dataDir, snapshot.RestoreOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Restore(no metadata) = %v, want ErrNotExist", err)
		}
		if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Restore(no metadata) created %s", dataDir)
		}
	})
}

func TestSchedulerRetention(t *testing.T) {
	src := liveStore(t, 1)
	dir := filepath.Join(t.TempDir(), "snapshots")
	manual := save(t, dir, "manual", t0.Add(-time.Hour), src)
	sched, err := snapshot.NewScheduler(dir, snapshot.BackendBolt, snapshot.DefaultSchedule, 2, src, nil)
	if err != nil {
		t.Fatalf("NewScheduler() = %v", err)
	}
	for i := range 4 {
		if _, err := sched.Take(context.Background(), t0.Add(time.Duration(i)*12*time.Hour)); err != nil {
			t.Fatalf("Take(%d) = %v", i, err)
		}
	}
	want := []string{"scheduled-20261208-120000", "scheduled-20261208-000000", manual.Name}
	if got := names(t, dir); !cmp.Equal(got, want) {
		t.Errorf("List() = %v, want %v", got, want)
	}
}

func TestSchedulerBadSpec(t *testing.T) {
	_, err := snapshot.NewScheduler(t.TempDir(), snapshot.BackendBolt, "every noon", 5, liveStore(t, 0), nil)
	if err == nil || !strings.Contains(err.Error(), "every noon") {
		t.Errorf("NewScheduler(\"every noon\") = %v, want an error naming the spec", err)
	}
}
