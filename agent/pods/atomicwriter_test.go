package pods

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var tWrite = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// readVolume returns what a container sees: each top-level entry followed
// through its link, files as "path=content (mode)".
func readVolume(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		root := filepath.Join(dir, e.Name())
		if info, err := os.Stat(root); err == nil && info.IsDir() {
			// The trailing separator makes the walk follow the link.
			root += string(filepath.Separator)
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := os.Stat(path)
			if err != nil || info.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			rel := filepath.Join(e.Name(), strings.TrimPrefix(path, root))
			if path == root {
				rel = e.Name()
			}
			out = append(out, fmt.Sprintf("%s=%s (%o)", rel, data, info.Mode().Perm()))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(out)
	return out
}

// versions lists the timestamped directories of dir.
func versions(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "..2026_*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	v1 := map[string]volumeFile{"a": {[]byte("1"), 0o644}, "b": {[]byte("2"), 0o400}}
	changed, err := writeAtomic(dir, v1, tWrite)
	if err != nil || !changed {
		t.Fatalf("first write = %v, %v; want true, nil", changed, err)
	}
	if d := cmp.Diff([]string{"a=1 (644)", "b=2 (400)"}, readVolume(t, dir)); d != "" {
		t.Errorf("after v1 (-want +got):\n%s", d)
	}
	if target, err := os.Readlink(filepath.Join(dir, "a")); err != nil || target != "..data/a" {
		t.Errorf("a links to %q (%v), want ..data/a", target, err)
	}
	if !strings.HasPrefix(filepath.Base(versions(t, dir)[0]), "..2026_12_07_10_00_00.") {
		t.Errorf("version directory %q is not named after the time", versions(t, dir)[0])
	}
	if changed, err := writeAtomic(dir, v1, tWrite.Add(time.Second)); err != nil || changed {
		t.Errorf("same payload again = %v, %v; want false, nil", changed, err)
	}
	v2 := map[string]volumeFile{"a": {[]byte("one"), 0o644}, "sub/c": {[]byte("3"), 0o600}}
	if changed, err := writeAtomic(dir, v2, tWrite.Add(time.Minute)); err != nil || !changed {
		t.Fatalf("second write = %v, %v; want true, nil", changed, err)
	}
	if d := cmp.Diff([]string{"a=one (644)", "sub/c=3 (600)"}, readVolume(t, dir)); d != "" {
		t.Errorf("after v2 (-want +got):\n%s", d)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Errorf("link of the removed key b is still there (%v)", err)
	}
	if n := len(versions(t, dir)); n != 1 {
		t.Errorf("%d version directories, want the old one removed", n)
	}
	// A mode change alone is a new version.
	v2["a"] = volumeFile{[]byte("one"), 0o640}
	if changed, err := writeAtomic(dir, v2, tWrite.Add(2*time.Minute)); err != nil || !changed {
		t.Errorf("mode change = %v, %v; want true, nil", changed, err)
	}
}

func TestWriteAtomicRefusesPaths(t *testing.T) {
	for _, p := range []string{"../x", "/abs", "..data", "..hidden", "a/../../x", ""} {
		dir := filepath.Join(t.TempDir(), "vol")
		_, err := writeAtomic(dir, map[string]volumeFile{p: {[]byte("x"), 0o644}}, tWrite)
		if !errors.Is(err, errUnsupported) {
			t.Errorf("path %q: err = %v, want errUnsupported", p, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("path %q: the volume was created", p)
		}
	}
}

// TestWriteAtomicReaders updates a volume while readers read it: every
// file a reader opens is whole, and every set read through one resolution
// of ..data belongs to one version.
func TestWriteAtomicReaders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	payload := func(v int) map[string]volumeFile {
		big := strings.Repeat(fmt.Sprint(v%10), 16<<10)
		return map[string]volumeFile{
			"version": {[]byte(fmt.Sprint(v)), 0o644},
			"big":     {[]byte(big), 0o644},
			"d/other": {[]byte(fmt.Sprint(v)), 0o644},
		}
	}
	if _, err := writeAtomic(dir, payload(0), tWrite); err != nil {
		t.Fatal(err)
	}
	const updates = 100
	var whole atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := readConsistent(dir, &whole); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for v := 1; v <= updates; v++ {
		if _, err := writeAtomic(dir, payload(v), tWrite.Add(time.Duration(v)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if whole.Load() == 0 {
		t.Error("no reader read the volume: the test checked nothing")
	}
	if got := readVolume(t, dir); len(got) != 3 || got[2] != fmt.Sprintf("version=%d (644)", updates) || got[1] != fmt.Sprintf("d/other=%d (644)", updates) {
		t.Errorf("final content = %.80q", got)
	}
}

// readConsistent reads the volume once through ..data and once through the
// top-level link of big, counting the whole reads of big in whole.
func readConsistent(dir string, whole *atomic.Int64) error {
	ts, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		return err
	}
	v, err1 := os.ReadFile(filepath.Join(dir, ts, "version"))
	o, err2 := os.ReadFile(filepath.Join(dir, ts, "d", "other"))
	if err1 != nil || err2 != nil {
		// The version was replaced and removed since ..data was read:
		// that set is gone as a whole, not half-written.
		if os.IsNotExist(err1) || os.IsNotExist(err2) {
			return nil
		}
		return errors.Join(err1, err2)
	}
	if string(v) != string(o) {
		return fmt.Errorf("one version holds version=%s and d/other=%s", v, o)
	}
	big, err := os.ReadFile(filepath.Join(dir, "big"))
	if os.IsNotExist(err) {
		// The path went through ..data to a version removed before the
		// file was opened (the kubelet's layout has the same window):
		// nothing was read, so nothing half-written either.
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading through the link: %w", err)
	}
	whole.Add(1)
	if len(big) != 16<<10 || strings.Count(string(big), string(big[0])) != len(big) {
		return fmt.Errorf("big read half-written: %d bytes", len(big))
	}
	return nil
}
