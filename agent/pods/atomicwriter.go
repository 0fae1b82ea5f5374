package pods

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The contents of API data volumes (configMap, secret, downwardAPI,
// projected) are written as the kubelet's atomic writer lays them out, so
// that containers see a new version appear at once and whole:
//
//	DIR/..2026_12_07_10_00_00.123456789/   one version of the files
//	DIR/..data -> ..2026_12_07_10_00_00.123456789
//	DIR/KEY -> ..data/KEY                  one link per top-level entry
//
// A new version is written into a fresh timestamped directory, then
// ..data is replaced by a rename of a new link (atomic), then the
// top-level links are added or removed, then the old version is deleted.
// A reader that opens DIR/KEY gets a file of one version, never a file
// being written; one that resolves ..data once sees a complete set.

const (
	dataLink    = "..data"
	dataLinkTmp = "..data_tmp"
)

// volumeFile is one file of a volume's payload.
type volumeFile struct {
	data []byte
	mode fs.FileMode
}

// writeAtomic makes dir hold exactly payload (keyed by relative path),
// leaving it untouched when it already does. It reports whether it wrote a
// new version.
func writeAtomic(dir string, payload map[string]volumeFile, now time.Time) (bool, error) {
	for p := range payload {
		if err := checkPayloadPath(p); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	if old != "" && holds(filepath.Join(dir, old), payload) {
		return false, nil
	}
	ts, err := writeVersion(dir, payload, now)
	if err != nil {
		return false, err
	}
	tmp := filepath.Join(dir, dataLinkTmp)
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		os.RemoveAll(ts)
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		os.RemoveAll(ts)
		return false, err
	}
	if err := linkTopLevel(dir, payload); err != nil {
		return true, err
	}
	if old != "" && old != filepath.Base(ts) {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return true, err
		}
	}
	return true, nil
}

// checkPayloadPath refuses paths that could leave the volume or clash with
// the writer's own entries, which all begin with "..".
func checkPayloadPath(p string) error {
	if p == "" || !filepath.IsLocal(p) || strings.HasPrefix(p, "..") {
		return fmt.Errorf("volume file path %q must be relative, without '..' and not start with '..': %w", p, errUnsupported)
	}
	return nil
}

// writeVersion writes payload into a new timestamped directory of dir.
func writeVersion(dir string, payload map[string]volumeFile, now time.Time) (string, error) {
	ts, err := os.MkdirTemp(dir, now.UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return "", err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		os.RemoveAll(ts)
		return "", err
	}
	for p, f := range payload {
		path := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, f.data, 0o600)
		}
		if err == nil {
			// Chmod, as the umask may have cleared bits of the mode.
			err = os.Chmod(path, f.mode)
		}
		if err != nil {
			os.RemoveAll(ts)
			return "", err
		}
	}
	return ts, nil
}

// holds tells whether the version directory ts holds exactly payload.
func holds(ts string, payload map[string]volumeFile) bool {
	files := 0
	err := filepath.WalkDir(ts, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(ts, path)
		f, ok := payload[rel]
		if !ok || !d.Type().IsRegular() {
			return fs.ErrNotExist
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm() != f.mode.Perm() {
			return fs.ErrNotExist
		}
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(data, f.data) {
			return fs.ErrNotExist
		}
		files++
		return nil
	})
	return err == nil && files == len(payload)
}

// linkTopLevel adds a link through ..data for each top-level entry of
// payload and removes the links of entries that are gone.
func linkTopLevel(dir string, payload map[string]volumeFile) error {
	want := map[string]bool{}
	for p := range payload {
		top, _, _ := strings.Cut(filepath.ToSlash(p), "/")
		want[top] = true
	}
	for top := range want {
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataLink, top), link); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || want[e.Name()] || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
