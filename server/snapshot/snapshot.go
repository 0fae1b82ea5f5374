// Package snapshot keeps copies of the server's store on disk: taking
// them from a running store, listing and pruning them, restoring one into
// a fresh data directory, and taking them on a cron schedule.
//
// # Files
//
// A snapshot NAME is two files in DATA/server/snapshots, both mode 0600 in a
// 0700 directory (a snapshot holds the cluster's Secrets as the store
// does, encrypted or not as they are there):
//
//	NAME        the store's bytes: a bbolt database file, or etcd's snapshot
//	NAME.json   Meta: name, time, backend, revision, size, SHA-256 of NAME,
//	            the cluster's CA, keys and join token sealed with that token
//
// Both are written under temporary names and renamed into place, NAME.json
// last, so a listed snapshot is complete. Restore checks the size and the
// checksum of NAME against NAME.json before it writes anything.
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Backends of Meta.Backend.
const (
	BackendBolt = "bolt"
	BackendEtcd = "etcd"
)

// APIPath is the server's non-resource path that saves a snapshot:
// POST APIPath?name=NAME answers 201 with the snapshot's Meta.
const APIPath = "/minik/v1/snapshots"

// metaSuffix ends the name of a snapshot's metadata file.
const metaSuffix = ".json"

// Sentinel errors.
var (
	// ErrExists: a snapshot of that name exists already.
	ErrExists = errors.New("snapshot: already exists")
	// ErrInvalidName: the name is not a DNS-1123 subdomain.
	ErrInvalidName = errors.New("snapshot: invalid name")
	// ErrCorrupt: the snapshot's bytes do not match its metadata.
	ErrCorrupt = errors.New("snapshot: corrupt")
)

// Meta describes one snapshot; it is stored as NAME.json.
type Meta struct {
	Name    string    `json:"name"`
	Time    time.Time `json:"time"`
	Backend string    `json:"backend"`
	// Revision is the store revision the snapshot holds (for etcd, at
	// least this one).
	Revision int64  `json:"revision"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	// Credentials are the cluster's CA, keys and join token secret
	// (pki.Shared) as pki.Seal seals them: opened with the join token
	// current when the snapshot was taken. Empty in snapshots of sources
	// without them and of earlier versions.
	Credentials []byte `json:"credentials,omitempty"`
	// Path is where the snapshot's bytes are; not stored.
	Path string `json:"path,omitempty"`
}

// Source is a store that can write a consistent copy of itself:
// store.Bolt and store.Etcd.
type Source interface {
	Snapshot(ctx context.Context, w io.Writer) (rev int64, err error)
}

// Sealer is a Source that also gives the cluster's credentials, sealed,
// which Save keeps in the snapshot's Meta.Credentials so that Restore
// brings the cluster's CA and join token back with its store.
type Sealer interface {
	SealedCredentials() ([]byte, error)
}

// Dir is where the server with data directory dataDir keeps snapshots.
func Dir(dataDir string) string {
	return filepath.Join(dataDir, "server", "snapshots")
}

// ValidateName returns ErrInvalidName, with the rule, unless name is a
// DNS-1123 subdomain (so it is a plain file name).
func ValidateName(name string) error {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, strings.Join(msgs, "; "))
	}
	return nil
}

// Save writes a snapshot of src named name into dir, created if missing,
// and returns its metadata. now is its time; backend its Meta.Backend. A
// taken name → ErrExists. On failure nothing is left in dir.
func Save(ctx context.Context, dir, name, backend string, now time.Time, src Source) (Meta, error) {
	if err := ValidateName(name); err != nil {
		return Meta{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Meta{}, err
	}
	path := filepath.Join(dir, name)
	if exists(path) || exists(path+metaSuffix) {
		return Meta{}, fmt.Errorf("snapshot %q: %w", name, ErrExists)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*.partial")
	if err != nil {
		return Meta{}, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	m := Meta{Name: name, Time: now.UTC(), Backend: backend}
	if sl, ok := src.(Sealer); ok {
		if m.Credentials, err = sl.SealedCredentials(); err != nil {
			return Meta{}, fmt.Errorf("snapshot %q: sealing the credentials: %w", name, err)
		}
	}
	m.Revision, m.Size, m.SHA256, err = copyFrom(ctx, tmp, src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot %q: %w", name, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil { // fails if taken meanwhile
		return Meta{}, fmt.Errorf("snapshot %q: %w", name, err)
	}
	if err := writeMeta(dir, m); err != nil {
		os.Remove(path)
		return Meta{}, fmt.Errorf("snapshot %q: %w", name, err)
	}
	m.Path = path
	return m, nil
}

// copyFrom writes src's snapshot into f, synced, and returns its revision,
// size and hex SHA-256.
func copyFrom(ctx context.Context, f *os.File, src Source) (rev, size int64, sum string, err error) {
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	if rev, err = src.Snapshot(ctx, cw); err != nil {
		return 0, 0, "", err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, "", err
	}
	return rev, cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeMeta writes NAME.json through a temporary file and syncs dir.
func writeMeta(dir string, m Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+m.Name+".*.json.partial")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, m.Name+metaSuffix))
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// ReadMeta reads the metadata of the snapshot whose bytes are at path
// (from path.json).
func ReadMeta(path string) (Meta, error) {
	data, err := os.ReadFile(path + metaSuffix)
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot metadata: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return Meta{}, fmt.Errorf("snapshot metadata %q: %w", path+metaSuffix, err)
	}
	m.Path = path
	return m, nil
}

// List returns the snapshots in dir, newest first (by Meta.Time, then
// name). A missing dir holds none. Files without metadata are not
// snapshots and are left out.
func List(dir string) ([]Meta, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var metas []Meta
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), metaSuffix)
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		m, err := ReadMeta(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		metas = append(metas, m)
	}
	slices.SortFunc(metas, func(a, b Meta) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	return metas, nil
}

// Prune deletes all but the newest keep snapshots in dir whose names
// start with prefix ("" = all), and returns those deleted. keep < 0 is
// taken as 0.
func Prune(dir, prefix string, keep int) ([]Meta, error) {
	metas, err := List(dir)
	if err != nil {
		return nil, err
	}
	var deleted []Meta
	kept := 0
	for _, m := range metas {
		if !strings.HasPrefix(m.Name, prefix) {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		// The metadata first: a snapshot without it is no longer listed.
		if err := os.Remove(m.Path + metaSuffix); err != nil {
			return deleted, err
		}
		if err := os.Remove(m.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return deleted, err
		}
		deleted = append(deleted, m)
	}
	return deleted, nil
}
