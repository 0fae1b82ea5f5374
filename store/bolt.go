package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var _ Store = (*Bolt)(nil)

// Errors for arguments no store accepts.
var (
	errEmptyKey         = errors.New("store: empty key")
	errNegativeRevision = errors.New("store: negative revision")
)

// Options tune a Bolt store. The zero value gives the defaults.
type Options struct {
	// KeepRevisions is how many recent revisions automatic compaction keeps
	// at least. Default 10000.
	KeepRevisions int64
	// KeepDuration is how far back automatic compaction keeps history at
	// least: a revision is compacted only when both windows have passed it.
	// Default 5 minutes.
	KeepDuration time.Duration
	// CompactInterval is how often automatic compaction runs. Default one
	// minute; negative disables automatic compaction (Compact still works).
	CompactInterval time.Duration

	// ProgressInterval is how often watchers that are caught up get an
	// EventProgress. Default one second; negative disables it.
	ProgressInterval time.Duration
	// WatchBuffer is the channel capacity of each watcher. A watcher whose
	// channel is full is set aside and caught up in the background.
	// Default 256.
	WatchBuffer int
	// WatchBufferBytes bounds the bytes of keys and values waiting in a
	// watcher's channel; past it the watcher is set aside as if its
	// channel were full. One event always fits. Default 8 MiB.
	WatchBufferBytes int
	// WindowSize is how many recent events are kept in memory to catch up
	// watchers without reading the log. Default 4096.
	WindowSize int
	// WindowBytes bounds the bytes of keys and values the window holds;
	// the oldest events leave it first. Default 64 MiB.
	WindowBytes int
	// WindowAge is how long an event stays in the window at most (checked
	// every ProgressInterval), so an idle store holds little. Default 2
	// minutes.
	WindowAge time.Duration

	// MmapSize is the initial size of bbolt's memory map. A map large
	// enough for the file keeps long reads from stalling the committer
	// when the file grows. Default 1 GiB (address space, not memory).
	MmapSize int

	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.KeepRevisions <= 0 {
		o.KeepRevisions = 10000
	}
	if o.KeepDuration <= 0 {
		o.KeepDuration = 5 * time.Minute
	}
	if o.CompactInterval == 0 {
		o.CompactInterval = time.Minute
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = time.Second
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = 256
	}
	if o.WindowSize <= 0 {
		o.WindowSize = 4096
	}
	if o.WatchBufferBytes <= 0 {
		o.WatchBufferBytes = 8 << 20
	}
	if o.WindowBytes <= 0 {
		o.WindowBytes = 64 << 20
	}
	if o.WindowAge <= 0 {
		o.WindowAge = 2 * time.Minute
	}
	if o.MmapSize <= 0 {
		o.MmapSize = 1 << 30
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Bolt is the bbolt implementation of Store. One committer goroutine turns
// every batch of waiting writes into one transaction and acknowledges the
// writers after the commit's fsync; see store/doc.go for the layout.
type Bolt struct {
	db   *bolt.DB
	opts Options
	lg   *slog.Logger
	m    *metrics
	hub  *hub

	rev       atomic.Int64 // last committed revision
	compacted atomic.Int64 // compacted revision

	reqc          chan *request
	closing       chan struct{} // closed by Close: the committer stops
	committerDone chan struct{} // closed when the committer has exited
	closed        atomic.Bool
	committer     committer // owned by the committer goroutine

	compactMu sync.Mutex // serialises compactions
	samples   []revSample

	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the store in the bbolt file at path and starts its
// committer, watch and compaction goroutines. Close releases it.
func Open(path string, opts Options) (*Bolt, error) {
	opts = opts.withDefaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         10 * time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.MmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	var rev, compacted int64
	err = db.Update(func(tx *bolt.Tx) error {
		if err := initSchema(tx); err != nil {
			return err
		}
		rev, compacted = readMeta(tx.Bucket(bucketMeta))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	s := &Bolt{
		db:            db,
		opts:          opts,
		lg:            opts.Logger.With("component", "store"),
		reqc:          make(chan *request, 1024),
		closing:       make(chan struct{}),
		committerDone: make(chan struct{}),
	}
	s.rev.Store(rev)
	s.compacted.Store(compacted)
	s.m = newMetrics(s)
	s.hub = newHub(s.lg, opts, rev, s.m.watchers, s.readLog)
	s.committer.rev = rev
	s.start()
	s.lg.Info("store opened", "path", path, "revision", rev, "compacted", compacted)
	return s, nil
}

func (s *Bolt) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	go s.runCommitter()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.hub.run(ctx, s.opts.ProgressInterval, s.opts.WindowAge)
	}()
	if s.opts.CompactInterval > 0 {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.runCompactor(ctx)
		}()
	}
}

// Close stops the store: writes still queued fail with ErrClosed, watch
// channels are closed after an EventError carrying ErrClosed (when there is
// room for it), and the database file is closed. Calling Close again
// returns the first result.
func (s *Bolt) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		<-s.committerDone
		s.bgCancel()
		s.bg.Wait()
		s.hub.close()
		s.closeErr = s.db.Close()
		s.lg.Info("store closed", "revision", s.rev.Load())
	})
	return s.closeErr
}

// Create stores value under key if the key does not exist and returns the
// revision of the write, once durable. Present key → ErrExists. The store
// keeps a copy of value.
func (s *Bolt) Create(ctx context.Context, key string, value []byte) (int64, error) {
	r, err := s.do(ctx, opCreate, key, value, 0)
	if err != nil {
		return 0, err
	}
	return r.rev, nil
}

// Update replaces the value of an existing key; see Store.Update. Missing
// key → ErrNotFound, stale expectedRev → ErrConflict.
func (s *Bolt) Update(ctx context.Context, key string, value []byte, expectedRev int64) (int64, error) {
	r, err := s.do(ctx, opUpdate, key, value, expectedRev)
	if err != nil {
		return 0, err
	}
	return r.rev, nil
}

// Delete removes key and returns the revision of the deletion and the
// removed object, whose Value belongs to the caller. Missing key →
// ErrNotFound, stale expectedRev → ErrConflict.
func (s *Bolt) Delete(ctx context.Context, key string, expectedRev int64) (int64, KV, error) {
	r, err := s.do(ctx, opDelete, key, nil, expectedRev)
	if err != nil {
		return 0, KV{}, err
	}
	return r.rev, r.prev, nil
}

// do queues one write for the committer and waits for its outcome. If ctx
// ends first the write may still be applied.
func (s *Bolt) do(ctx context.Context, kind opKind, key string, value []byte, expected int64) (result, error) {
	if key == "" {
		return result{}, errEmptyKey
	}
	if len(key) > bolt.MaxKeySize {
		return result{}, fmt.Errorf("key %.64q…: %w", key, berrors.ErrKeyTooLarge)
	}
	if s.closed.Load() {
		return result{}, ErrClosed
	}
	r := newRequest(kind, key, value, expected)
	select {
	case s.reqc <- r:
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-s.closing:
		return result{}, ErrClosed
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return result{}, ctx.Err() // r stays with the committer
	case <-s.committerDone:
		select {
		case <-r.done:
		default:
			return result{}, ErrClosed
		}
	}
	res := r.result
	releaseRequest(r)
	return res, res.err
}

// Get returns the current value of key; the KV belongs to the caller.
// Missing key → ErrNotFound.
func (s *Bolt) Get(ctx context.Context, key string) (KV, error) {
	var kv KV
	// Only the keys bucket: opening a bucket costs a search of the root.
	err := s.viewKeys(ctx, func(keys *bolt.Bucket) error {
		rec := keys.Get([]byte(key))
		if rec == nil {
			return fmt.Errorf("key %q: %w", key, ErrNotFound)
		}
		createRev, modRev, value, err := decodeKeyRecord(rec)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		kv = KV{Key: key, Value: clone(value), CreateRevision: createRev, ModRevision: modRev}
		return nil
	})
	return kv, err
}

// List returns the keys with the given prefix as of revision rev (0 =
// current), sorted by key, and the revision the list reflects; see
// Store.List. A past revision is rebuilt by undoing the log from the
// current state, so its cost grows with the revisions since rev.
func (s *Bolt) List(ctx context.Context, prefix string, rev int64) ([]KV, int64, error) {
	kvs, at, _, err := s.ListPage(ctx, prefix, "", rev, 0)
	return kvs, at, err
}

// ListPage returns at most limit keys (0 = all) with the given prefix
// from start on, as of revision rev (0 = current); see Store.ListPage. It
// reads the keys bucket from start on and, for a past revision, the log
// records since rev, which it undoes on the keys they touch.
func (s *Bolt) ListPage(ctx context.Context, prefix, start string, rev int64, limit int) ([]KV, int64, bool, error) {
	var kvs []KV
	var more bool
	at, err := s.atRevision(ctx, prefix, start, rev, func(it pageIter) error {
		var err error
		kvs, more, err = readPage(it, limit)
		return err
	})
	if err != nil {
		return nil, 0, false, err
	}
	return kvs, at, more, nil
}

// Count returns how many keys with the given prefix there are from start
// on, as of revision rev (0 = current); see Store.Count.
func (s *Bolt) Count(ctx context.Context, prefix, start string, rev int64) (int64, error) {
	var n int64
	_, err := s.atRevision(ctx, prefix, start, rev, func(it pageIter) error {
		return it.each(func([]byte, []byte, *KV) bool { n++; return true })
	})
	return n, err
}

// atRevision calls read, in one read transaction, with an iterator over
// the keys with the prefix from start on as of revision rev (0 =
// current), and returns the revision they reflect.
func (s *Bolt) atRevision(ctx context.Context, prefix, start string, rev int64, read func(pageIter) error) (int64, error) {
	var at int64
	err := s.view(ctx, func(b buckets) error {
		cur, compacted := readMeta(b.meta)
		switch {
		case rev < 0:
			return fmt.Errorf("revision %d: %w", rev, errNegativeRevision)
		case rev > cur:
			return fmt.Errorf("revision %d (current %d): %w", rev, cur, ErrFutureRevision)
		case rev > 0 && rev < compacted:
			return fmt.Errorf("revision %d (compacted %d): %w", rev, compacted, ErrCompacted)
		}
		at = cur
		from := max(prefix, start)
		var undo map[string]*KV
		if rev > 0 && rev < cur {
			at = rev
			var err error
			if undo, err = undoLog(ctx, b.log, prefix, from, rev, cur); err != nil {
				return err
			}
		}
		return read(pageIter{keys: b.keys, prefix: prefix, from: from, undo: undo})
	})
	return at, err
}

// pageIter walks the records with a prefix from key from on in the keys
// bucket as of the revision undo was made for: a key in undo has the state
// it holds there (nil = absent) instead of its current one.
type pageIter struct {
	keys   *bolt.Bucket
	prefix string
	from   string
	undo   map[string]*KV
}

// each calls fn for every record in key order until fn returns false:
// with the key and the stored record for a current one, with kv for one
// rebuilt from the log.
func (it pageIter) each(fn func(key, record []byte, kv *KV) bool) error {
	pending := slices.Sorted(maps.Keys(it.undo))
	c := it.keys.Cursor()
	k, v := c.Seek([]byte(it.from))
	for {
		inPrefix := k != nil && bytes.HasPrefix(k, []byte(it.prefix))
		if !inPrefix && len(pending) == 0 {
			return nil
		}
		if len(pending) > 0 && (!inPrefix || pending[0] <= string(k)) {
			kv := it.undo[pending[0]]
			if inPrefix && pending[0] == string(k) {
				k, v = c.Next()
			}
			pending = pending[1:]
			if kv != nil && !fn(nil, nil, kv) {
				return nil
			}
			continue
		}
		key, record := k, v
		k, v = c.Next()
		if !fn(key, record, nil) {
			return nil
		}
	}
}

// readPage copies at most limit records (0 = all) out of it. more reports
// whether records follow the page.
func readPage(it pageIter, limit int) (kvs []KV, more bool, err error) {
	err = it.each(func(key, record []byte, kv *KV) bool {
		if limit > 0 && len(kvs) == limit {
			more = true
			return false
		}
		if kv == nil {
			createRev, modRev, value, derr := decodeKeyRecord(record)
			if derr != nil {
				err = fmt.Errorf("key %q: %w", key, derr)
				return false
			}
			kv = &KV{Key: string(key), Value: clone(value), CreateRevision: createRev, ModRevision: modRev}
		}
		kvs = append(kvs, *kv)
		return true
	})
	if err != nil {
		return nil, false, err
	}
	return kvs, more, nil
}

// CurrentRevision returns the revision of the last committed write.
func (s *Bolt) CurrentRevision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return s.rev.Load(), nil
}

// CompactedRevision returns the revision history was last compacted to:
// List and Watch below it fail with ErrCompacted.
func (s *Bolt) CompactedRevision() int64 {
	return s.compacted.Load()
}

// Watch delivers the changes to keys with the given prefix made after
// revision rev; see Store.Watch. rev may be ahead of the current revision:
// the watch then starts with the first event after rev. Close ends every
// watch with an EventError carrying ErrClosed (if the channel has room)
// and closes the channel. The Value and PrevValue slices of events are
// shared between watchers and must not be modified.
func (s *Bolt) Watch(ctx context.Context, prefix string, rev int64) (<-chan Event, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if rev < 0 {
		return nil, fmt.Errorf("revision %d: %w", rev, errNegativeRevision)
	}
	if c := s.compacted.Load(); rev > 0 && rev < c {
		return nil, fmt.Errorf("revision %d (compacted %d): %w", rev, c, ErrCompacted)
	}
	return s.hub.watch(ctx, prefix, rev)
}

// view runs fn in a read transaction with the store's buckets open.
func (s *Bolt) view(ctx context.Context, fn func(b buckets) error) error {
	return s.viewTx(ctx, func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// viewKeys is view for a read of the keys bucket alone.
func (s *Bolt) viewKeys(ctx context.Context, fn func(keys *bolt.Bucket) error) error {
	return s.viewTx(ctx, func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		if keys == nil {
			return fmt.Errorf("missing bucket: %w", errCorrupt)
		}
		return fn(keys)
	})
}

// viewTx runs fn in a read transaction, mapping a closed database to
// ErrClosed.
func (s *Bolt) viewTx(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
