package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// compactBatch is how many log records one compaction transaction deletes,
// so writers wait at most for one short transaction.
const compactBatch = 2000

// logScanLimit bounds the records one catch-up read examines.
const logScanLimit = 16 * catchUpBatch

// undoLog returns the state at revision rev of the keys with prefix, from
// key from on, that the log records after rev (up to cur) touched: the
// value and revisions a key had at rev, or nil if it did not exist then.
// Records are read newest first, so the oldest one after rev decides.
func undoLog(ctx context.Context, log *bolt.Bucket, prefix, from string, rev, cur int64) (map[string]*KV, error) {
	undo := map[string]*KV{}
	var lr logRecord
	c := log.Cursor()
	k, v := c.Seek(revKey(nil, cur))
	if k == nil || parseRevKey(k) != cur {
		return nil, fmt.Errorf("log record of revision %d missing: %w", cur, errCorrupt)
	}
	for n := 0; k != nil && parseRevKey(k) > rev; k, v = c.Prev() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		_, key, err := decodeLogKey(v)
		if err != nil {
			return nil, fmt.Errorf("log revision %d: %w", parseRevKey(k), err)
		}
		if !bytes.HasPrefix(key, []byte(prefix)) || string(key) < from {
			continue
		}
		if err := decodeLogRecord(v, &lr); err != nil {
			return nil, fmt.Errorf("log revision %d: %w", parseRevKey(k), err)
		}
		if lr.typ == logCreate {
			undo[string(key)] = nil
			continue
		}
		undo[string(key)] = &KV{Key: string(key), Value: clone(lr.prev), CreateRevision: lr.createRev, ModRevision: lr.prevModRev}
	}
	return undo, nil
}

// readLog reads the events with prefix from revision from on; it is the
// hub's logReader.
func (s *Bolt) readLog(prefix string, from int64, limit, limitBytes int) (evs []Event, next int64, err error) {
	next = from
	err = s.view(context.Background(), func(b buckets) error {
		if _, compacted := readMeta(b.meta); from <= compacted {
			return fmt.Errorf("revision %d (compacted %d): %w", from-1, compacted, ErrCompacted)
		}
		c := b.log.Cursor()
		scanned, size := 0, 0
		for k, v := c.Seek(revKey(nil, from)); k != nil; k, v = c.Next() {
			if len(evs) >= limit || scanned >= logScanLimit || (len(evs) > 0 && size >= limitBytes) {
				break
			}
			scanned++
			rev := parseRevKey(k)
			next = rev + 1
			_, key, err := decodeLogKey(v)
			if err != nil {
				return fmt.Errorf("log revision %d: %w", rev, err)
			}
			if !bytes.HasPrefix(key, []byte(prefix)) {
				continue
			}
			var lr logRecord
			if err := decodeLogRecord(v, &lr); err != nil {
				return fmt.Errorf("log revision %d: %w", rev, err)
			}
			ev, err := lr.event(rev)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
			size += ev.weight()
		}
		return nil
	})
	return evs, next, err
}

// Compact discards the history before revision rev: afterwards List at a
// revision below rev and Watch from below rev fail with ErrCompacted, while
// List at rev and Watch from rev still work (the log records up to and
// including rev are deleted). rev above the current revision →
// ErrFutureRevision; rev at or below the compacted revision does nothing. The log is deleted in short
// transactions between which writes go on; if ctx ends midway the rest is
// deleted by the next compaction.
func (s *Bolt) Compact(ctx context.Context, rev int64) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if cur := s.rev.Load(); rev > cur {
		return fmt.Errorf("revision %d (current %d): %w", rev, cur, ErrFutureRevision)
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if rev > s.compacted.Load() {
		err := s.update(func(b buckets) error {
			return b.meta.Put(metaCompacted, beUint64(uint64(rev)))
		})
		if err != nil {
			return fmt.Errorf("compact to %d: %w", rev, err)
		}
		s.compacted.Store(rev)
		s.lg.Debug("compacted", "revision", rev)
	}
	return s.deleteLog(ctx, s.compacted.Load())
}

// deleteLog deletes the log records up to and including rev, in batches.
// s.compactMu must be held.
func (s *Bolt) deleteLog(ctx context.Context, rev int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var more bool
		err := s.update(func(b buckets) error {
			var keys [][]byte
			c := b.log.Cursor()
			for k, _ := c.First(); k != nil && parseRevKey(k) <= rev; k, _ = c.Next() {
				if len(keys) == compactBatch {
					more = true
					break
				}
				keys = append(keys, clone(k))
			}
			for _, k := range keys {
				if err := b.log.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("compact log to %d: %w", rev, err)
		}
		if !more {
			return nil
		}
	}
}

// update runs fn in a write transaction of its own, outside the committer;
// bbolt serialises it with the committer's transactions.
func (s *Bolt) update(fn func(b buckets) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// revSample records the revision current at a time, so automatic
// compaction can find the revision that was current KeepDuration ago.
type revSample struct {
	at  time.Time
	rev int64
}

// runCompactor compacts every CompactInterval until ctx ends.
func (s *Bolt) runCompactor(ctx context.Context) {
	t := time.NewTicker(s.opts.CompactInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := s.autoCompact(ctx, now); err != nil && ctx.Err() == nil {
				s.lg.Warn("automatic compaction failed", "err", err)
			}
		}
	}
}

// autoCompact compacts to the newest revision outside both windows: at
// least KeepRevisions old and already current KeepDuration ago.
func (s *Bolt) autoCompact(ctx context.Context, now time.Time) error {
	cur := s.rev.Load()
	s.samples = append(s.samples, revSample{at: now, rev: cur})
	cutoff := now.Add(-s.opts.KeepDuration)
	i := 0 // the newest sample taken at or before cutoff
	for i+1 < len(s.samples) && !s.samples[i+1].at.After(cutoff) {
		i++
	}
	s.samples = s.samples[i:]
	if s.samples[0].at.After(cutoff) {
		return nil // not running for KeepDuration yet
	}
	target := min(cur-s.opts.KeepRevisions, s.samples[0].rev)
	if target <= s.compacted.Load() {
		return nil
	}
	return s.Compact(ctx, target)
}
