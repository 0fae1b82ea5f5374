package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/minik-dev/minik/store"
)

// ErrDataDirNotEmpty: Restore was asked to write into a data directory
// that holds files.
var ErrDataDirNotEmpty = errors.New("snapshot: data directory is not empty")

// StorePath is where a server with data directory dataDir keeps its bbolt
// store.
func StorePath(dataDir string) string {
	return filepath.Join(dataDir, "db", "state.db")
}

// Restore makes dataDir, which must be missing or empty, the data
// directory of a server whose store is the snapshot at path (a bbolt
// snapshot; its metadata at path.json). It checks the snapshot's size and
// checksum before writing anything: a mismatch → ErrCorrupt naming the
// file. The restored store's revision is bump past the snapshot's
// (store.Restore); the server started on dataDir creates new certificates
// and a new join token unless they are put in place first.
func Restore(ctx context.Context, path, dataDir string, bump int64) (store.RestoreResult, error) {
	m, err := ReadMeta(path)
	if err != nil {
		return store.RestoreResult{}, err
	}
	if m.Backend != BackendBolt {
		return store.RestoreResult{}, fmt.Errorf("snapshot %q is of backend %q: only %q snapshots restore here (etcd snapshots restore with etcdutl)", path, m.Backend, BackendBolt)
	}
	if err := checkEmpty(dataDir); err != nil {
		return store.RestoreResult{}, err
	}
	if err := Verify(ctx, m); err != nil {
		return store.RestoreResult{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return store.RestoreResult{}, err
	}
	defer f.Close()
	created := !exists(dataDir)
	dbPath := StorePath(dataDir)
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return store.RestoreResult{}, err
	}
	// The copy is hashed again: the file may change between the check and
	// the copy.
	h := sha256.New()
	res, err := store.Restore(ctx, io.TeeReader(f, h), dbPath, bump)
	if err == nil && hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
		os.Remove(dbPath)
		err = fmt.Errorf("snapshot %q changed while it was restored: %w", path, ErrCorrupt)
	}
	if err != nil {
		os.RemoveAll(filepath.Join(dataDir, "db"))
		if created {
			os.Remove(dataDir)
		}
		return store.RestoreResult{}, fmt.Errorf("restoring %q: %w", path, err)
	}
	return res, nil
}

// Verify checks the size and SHA-256 of the snapshot bytes at m.Path
// against m: a mismatch → ErrCorrupt naming the file.
func Verify(ctx context.Context, m Meta) error {
	f, err := os.Open(m.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, readerCtx{ctx, f})
	if err != nil {
		return fmt.Errorf("snapshot %q: %w", m.Path, err)
	}
	if n != m.Size {
		return fmt.Errorf("snapshot %q is %d bytes, its metadata says %d: %w", m.Path, n, m.Size, ErrCorrupt)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
		return fmt.Errorf("snapshot %q has SHA-256 %s, its metadata says %s: %w", m.Path, sum, m.SHA256, ErrCorrupt)
	}
	return nil
}

// checkEmpty returns ErrDataDirNotEmpty naming dir and a file in it
// unless dir is missing or empty.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%q (holds %q): %w", dir, entries[0].Name(), ErrDataDirNotEmpty)
	}
	return nil
}

type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
