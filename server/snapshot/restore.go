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
	"time"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/pki"
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

// ErrTokenRequired: the snapshot carries the cluster's credentials and
// Restore was given no join token to open them.
var ErrTokenRequired = errors.New("snapshot: the join token is required to restore the cluster's credentials")

// RestoreOptions are Restore's choices.
type RestoreOptions struct {
	// Bump is how far the restored store's revision moves past the
	// snapshot's (store.Restore).
	Bump int64
	// Token is the join token (or its secret) that was current when the
	// snapshot was taken; it opens the snapshot's Meta.Credentials.
	Token string
}

// Restored is what Restore did.
type Restored struct {
	store.RestoreResult
	// Credentials is true when the cluster's CA, keys and join token were
	// restored from the snapshot; false for a snapshot without them, on
	// whose data directory a server creates new ones.
	Credentials bool
}

// Restore makes dataDir, which must be missing or empty, the data
// directory of a server whose store is the snapshot at path (a bbolt
// snapshot; its metadata at path.json). It checks the snapshot's size and
// checksum, and opens its credentials with opts.Token, before writing
// anything: a mismatch → ErrCorrupt naming the file, no token →
// ErrTokenRequired, a token that does not open them → pki.ErrWrongToken.
// The restored store's revision is opts.Bump past the snapshot's
// (store.Restore). The credentials go where the server keeps them
// (pki.Install): started on dataDir, it has the cluster's CA, so the
// admin kubeconfigs and node certificates it issued work, and the join
// token of the snapshot's time.
func Restore(ctx context.Context, path, dataDir string, opts RestoreOptions) (Restored, error) {
	m, err := ReadMeta(path)
	if err != nil {
		return Restored{}, err
	}
	if m.Backend != BackendBolt {
		return Restored{}, fmt.Errorf("snapshot %q is of backend %q: only %q snapshots restore here (etcd snapshots restore with etcdutl)", path, m.Backend, BackendBolt)
	}
	if err := checkEmpty(dataDir); err != nil {
		return Restored{}, err
	}
	if err := Verify(ctx, m); err != nil {
		return Restored{}, err
	}
	creds, err := openCredentials(path, m, opts.Token)
	if err != nil {
		return Restored{}, err
	}
	created := !exists(dataDir)
	res, err := restoreStore(ctx, path, m, dataDir, opts.Bump)
	if err == nil && creds != nil {
		err = pki.Install(dataDir, *creds)
	}
	if err != nil {
		removeContents(dataDir)
		if created {
			os.Remove(dataDir)
		}
		return Restored{}, fmt.Errorf("restoring %q: %w", path, err)
	}
	return Restored{RestoreResult: res, Credentials: creds != nil}, nil
}

// openCredentials opens m's credentials with token; nil when the snapshot
// has none.
func openCredentials(path string, m Meta, token string) (*pki.Shared, error) {
	if len(m.Credentials) == 0 {
		return nil, nil
	}
	if token == "" {
		return nil, fmt.Errorf("snapshot %q carries the cluster's CA and keys, sealed with the join token of %s: %w",
			path, m.Time.Format(time.RFC3339), ErrTokenRequired)
	}
	pin, secret, err := api.ParseToken(token)
	if err != nil {
		return nil, err
	}
	hash, err := pki.SealedCAHash(m.Credentials)
	if err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", path, err)
	}
	if pin != "" && pin != hash {
		return nil, fmt.Errorf("snapshot %q is of the cluster with CA %s, the token pins CA %s: %w", path, hash, pin, pki.ErrWrongToken)
	}
	sh, err := pki.Unseal(m.Credentials, secret)
	if err != nil {
		return nil, fmt.Errorf("snapshot %q (taken %s): %w", path, m.Time.Format(time.RFC3339), err)
	}
	return &sh, nil
}

// restoreStore writes the store of the snapshot at path into dataDir.
func restoreStore(ctx context.Context, path string, m Meta, dataDir string, bump int64) (store.RestoreResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.RestoreResult{}, err
	}
	defer f.Close()
	dbPath := StorePath(dataDir)
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return store.RestoreResult{}, err
	}
	// The copy is hashed again: the file may change between the check and
	// the copy.
	h := sha256.New()
	res, err := store.Restore(ctx, io.TeeReader(f, h), dbPath, bump)
	if err == nil && hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
		err = fmt.Errorf("snapshot %q changed while it was restored: %w", path, ErrCorrupt)
	}
	return res, err
}

// removeContents removes what a failed Restore wrote into dataDir, which
// was empty.
func removeContents(dataDir string) {
	entries, _ := os.ReadDir(dataDir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dataDir, e.Name()))
	}
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
