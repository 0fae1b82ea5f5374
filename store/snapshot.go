package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultRevisionBump is how far Restore moves the revision past the
// snapshot's by default: more writes than a store takes between a
// snapshot and the restore of it, so no revision a client saw is handed
// out again.
const DefaultRevisionBump = 1_000_000_000

// ErrNotSnapshot: the bytes given to Restore are not a store file.
var ErrNotSnapshot = errors.New("store: not a snapshot of a minik store")

// Snapshot writes a consistent copy of the whole database file to w, as
// of one read transaction, and returns the revision it holds. Writers go on
// committing meanwhile; the copy keeps pages they free alive until it ends.
// Safe to call concurrently with every other method.
func (s *Bolt) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	var rev int64
	err := s.viewTx(ctx, func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		rev, _ = readMeta(b.meta)
		_, err = tx.WriteTo(ctxWriter{ctx, w})
		return err
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// Snapshot streams etcd's own snapshot of the cluster's database (all of
// it, not only this store's prefix) from one member to w, and returns a
// revision the snapshot holds at least: the store's current revision when
// the stream began. Restore it with etcdutl, not with Restore.
func (s *Etcd) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd: %w", err)
	}
	rc, err := s.cli.Maintenance.Snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("etcd snapshot: %w", err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return 0, fmt.Errorf("etcd snapshot: %w", err)
	}
	return resp.Header.Revision, nil
}

// ctxWriter stops a long copy once ctx ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// RestoreResult describes a restored store file.
type RestoreResult struct {
	// SnapshotRevision is the revision the snapshot held.
	SnapshotRevision int64
	// Revision is the restored store's revision, and its compacted one:
	// the next write gets Revision+1, and a List or Watch from any earlier
	// revision fails with ErrCompacted (HTTP 410), so clients relist.
	Revision int64
}

// Restore writes the store file path (which must not exist) from a
// snapshot taken by Bolt.Snapshot, moves its revision bump past the
// snapshot's (bump <= 0: DefaultRevisionBump) and marks history compacted
// up to there, with an empty log. A snapshot that is no store file →
// ErrNotSnapshot, and path is left absent.
func Restore(ctx context.Context, src io.Reader, path string, bump int64) (RestoreResult, error) {
	if bump <= 0 {
		bump = DefaultRevisionBump
	}
	tmp := path + ".restoring"
	if err := writeNew(ctx, tmp, src); err != nil {
		return RestoreResult{}, err
	}
	res, err := rewriteRestored(tmp, bump)
	if err == nil {
		err = renameSynced(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return RestoreResult{}, err
	}
	return res, nil
}

// writeNew copies src into the new file path, mode 0600, synced.
func writeNew(ctx context.Context, path string, src io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(ctxWriter{ctx, f}, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// rewriteRestored checks that the bbolt file at path holds a store and
// moves its revision and compacted revision to the snapshot's plus bump,
// dropping the log (all of it lies below the new compacted revision).
func rewriteRestored(path string, bump int64) (RestoreResult, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{OpenFile: openExisting})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("%w: %w", ErrNotSnapshot, err)
	}
	var res RestoreResult
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotSnapshot, err)
		}
		if err := initSchema(tx); err != nil {
			return fmt.Errorf("%w: %w", ErrNotSnapshot, err)
		}
		res.SnapshotRevision, _ = readMeta(b.meta)
		res.Revision = res.SnapshotRevision + bump
		if err := tx.DeleteBucket(bucketLog); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketLog); err != nil {
			return err
		}
		if err := b.meta.Put(metaRevision, beUint64(uint64(res.Revision))); err != nil {
			return err
		}
		return b.meta.Put(metaCompacted, beUint64(uint64(res.Revision)))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return res, err
}

// openExisting opens a bbolt file without creating it.
func openExisting(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag&^os.O_CREATE, perm)
}

// renameSynced renames from to to and syncs their directory.
func renameSynced(from, to string) error {
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("%q: %w", to, os.ErrExist)
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
