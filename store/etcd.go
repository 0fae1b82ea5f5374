package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var _ Store = (*Etcd)(nil)

// listPage bounds the keys fetched by one range request of List.
const listPage = 5000

// EtcdOptions configure an Etcd store. Only Endpoints is required.
type EtcdOptions struct {
	// Endpoints are the client URLs of the etcd members
	// ("http://10.0.0.1:2379"); https ones need TLS.CAFile at least.
	Endpoints []string
	// TLS holds the client's certificate files; all empty = no TLS.
	TLS EtcdTLS
	// Prefix is prepended to every key in etcd, verbatim. Stores sharing
	// a cluster need prefixes none of which is a prefix of another's
	// keys. Default "/minik".
	Prefix string
	// DialTimeout bounds the first connection. Default 10 seconds.
	DialTimeout time.Duration

	// CompactionWindow is how many recent revisions automatic compaction
	// keeps at least. Default 10000.
	CompactionWindow int64
	// CompactionInterval is how often automatic compaction runs; a
	// revision is compacted only once it is both outside the window and
	// one interval old, so history also covers the last interval.
	// Default 5 minutes; negative disables it (Compact still works).
	// etcd itself compacts nothing unless told to.
	CompactionInterval time.Duration

	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// EtcdTLS names the PEM files for a TLS connection to etcd.
type EtcdTLS struct {
	CAFile   string // verifies the members' certificates
	CertFile string // client certificate, with KeyFile
	KeyFile  string
}

func (o EtcdOptions) withDefaults() EtcdOptions {
	if o.Prefix == "" {
		o.Prefix = "/minik"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.CompactionWindow <= 0 {
		o.CompactionWindow = 10000
	}
	if o.CompactionInterval == 0 {
		o.CompactionInterval = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Etcd is the Store implementation on an etcd cluster. Revisions are
// etcd's own: a KV's ModRevision is the etcd key's mod revision, so several
// minik servers on one cluster agree on every resourceVersion.
type Etcd struct {
	cli    *clientv3.Client
	prefix string
	opts   EtcdOptions
	lg     *slog.Logger
	m      *etcdMetrics

	rev       atomic.Int64 // highest revision seen in a response
	compacted atomic.Int64 // highest revision this store compacted to
	closed    atomic.Bool

	bgCtx     context.Context // ended by Close; parent of watches
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// OpenEtcd connects to the etcd cluster of opts.Endpoints, checks that it
// answers within opts.DialTimeout, and starts automatic compaction. Close
// releases it.
func OpenEtcd(ctx context.Context, opts EtcdOptions) (*Etcd, error) {
	opts = opts.withDefaults()
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	tlsCfg, err := opts.TLS.config()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		TLS:         tlsCfg,
		DialTimeout: opts.DialTimeout,
		Logger:      zap.NewNop(),
		// Keepalives notice a dead member so requests move to another.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", opts.Endpoints, err)
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	s := &Etcd{
		cli:      cli,
		prefix:   opts.Prefix,
		opts:     opts,
		lg:       opts.Logger.With("component", "store", "backend", "etcd"),
		bgCtx:    bgCtx,
		bgCancel: cancel,
	}
	s.m = newEtcdMetrics(s)
	dialCtx, dialCancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer dialCancel()
	rev, err := s.CurrentRevision(dialCtx)
	if err != nil {
		cancel()
		cli.Close()
		return nil, fmt.Errorf("etcd %v: %w", opts.Endpoints, err)
	}
	if opts.CompactionInterval > 0 {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.runCompactor(bgCtx)
		}()
	}
	s.lg.Info("store opened", "endpoints", opts.Endpoints, "prefix", opts.Prefix, "revision", rev)
	return s, nil
}

func (t EtcdTLS) config() (*tls.Config, error) {
	if t == (EtcdTLS{}) {
		return nil, nil
	}
	info := transport.TLSInfo{TrustedCAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS: %w", err)
	}
	return cfg, nil
}

// Close stops compaction, ends every watch (after an EventError carrying
// ErrClosed when the channel has room) and closes the connection. Later
// calls return the first result.
func (s *Etcd) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.bgCancel()
		s.bg.Wait()
		s.closeErr = s.cli.Close()
		s.lg.Info("store closed", "revision", s.rev.Load())
	})
	return s.closeErr
}

// Create stores value under key if the key does not exist and returns the
// revision of the write, once etcd has committed it. Present key →
// ErrExists.
func (s *Etcd) Create(ctx context.Context, key string, value []byte) (int64, error) {
	if err := s.check(key); err != nil {
		return 0, err
	}
	k := s.prefix + key
	defer s.m.observe("create", time.Now())
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(value))).
		Commit()
	if err != nil {
		return 0, s.wrap(ctx, fmt.Sprintf("create %q", key), err)
	}
	s.seen(resp.Header.Revision)
	if !resp.Succeeded {
		return 0, fmt.Errorf("key %q: %w", key, ErrExists)
	}
	return resp.Header.Revision, nil
}

// Update replaces the value of an existing key; see Store.Update. Missing
// key → ErrNotFound, stale expectedRev → ErrConflict.
func (s *Etcd) Update(ctx context.Context, key string, value []byte, expectedRev int64) (int64, error) {
	if err := s.check(key); err != nil {
		return 0, err
	}
	if expectedRev < 0 {
		return 0, fmt.Errorf("revision %d: %w", expectedRev, errNegativeRevision)
	}
	k := s.prefix + key
	defer s.m.observe("update", time.Now())
	resp, err := s.cli.Txn(ctx).
		If(expected(k, expectedRev)).
		Then(clientv3.OpPut(k, string(value))).
		Else(clientv3.OpGet(k, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, s.wrap(ctx, fmt.Sprintf("update %q", key), err)
	}
	s.seen(resp.Header.Revision)
	if !resp.Succeeded {
		return 0, failedWrite(key, expectedRev, resp)
	}
	return resp.Header.Revision, nil
}

// Delete removes key and returns the revision of the deletion and the
// removed object, which belongs to the caller. Missing key → ErrNotFound,
// stale expectedRev → ErrConflict.
func (s *Etcd) Delete(ctx context.Context, key string, expectedRev int64) (int64, KV, error) {
	if err := s.check(key); err != nil {
		return 0, KV{}, err
	}
	if expectedRev < 0 {
		return 0, KV{}, fmt.Errorf("revision %d: %w", expectedRev, errNegativeRevision)
	}
	k := s.prefix + key
	defer s.m.observe("delete", time.Now())
	resp, err := s.cli.Txn(ctx).
		If(expected(k, expectedRev)).
		Then(clientv3.OpDelete(k, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(k, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, KV{}, s.wrap(ctx, fmt.Sprintf("delete %q", key), err)
	}
	s.seen(resp.Header.Revision)
	if !resp.Succeeded {
		return 0, KV{}, failedWrite(key, expectedRev, resp)
	}
	del := resp.Responses[0].GetResponseDeleteRange()
	if del == nil || len(del.PrevKvs) == 0 {
		return 0, KV{}, fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	return resp.Header.Revision, s.kv(del.PrevKvs[0].Key, del.PrevKvs[0].Value,
		del.PrevKvs[0].CreateRevision, del.PrevKvs[0].ModRevision), nil
}

// expected is the condition of an Update or Delete: the key's mod revision
// is expectedRev, or for 0 that the key exists.
func expected(k string, expectedRev int64) clientv3.Cmp {
	if expectedRev == 0 {
		return clientv3.Compare(clientv3.CreateRevision(k), ">", 0)
	}
	return clientv3.Compare(clientv3.ModRevision(k), "=", expectedRev)
}

// failedWrite explains a transaction whose condition failed, from the
// key lookup of its Else branch.
func failedWrite(key string, expectedRev int64, resp *clientv3.TxnResponse) error {
	if get := resp.Responses[0].GetResponseRange(); get == nil || len(get.Kvs) == 0 {
		return fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	return fmt.Errorf("key %q at revision %d: %w", key, expectedRev, ErrConflict)
}

// Get returns the current value of key; the KV belongs to the caller.
// Missing key → ErrNotFound.
func (s *Etcd) Get(ctx context.Context, key string) (KV, error) {
	if err := s.check(key); err != nil {
		return KV{}, err
	}
	resp, err := s.cli.Get(ctx, s.prefix+key)
	if err != nil {
		return KV{}, s.wrap(ctx, fmt.Sprintf("get %q", key), err)
	}
	s.seen(resp.Header.Revision)
	if len(resp.Kvs) == 0 {
		return KV{}, fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	kv := resp.Kvs[0]
	return s.kv(kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision), nil
}

// List returns the keys with the given prefix as of revision rev (0 =
// current), sorted by key, and the revision the list reflects; see
// Store.List. Large results are read in pages, all at one revision.
func (s *Etcd) List(ctx context.Context, prefix string, rev int64) ([]KV, int64, error) {
	kvs, at, _, err := s.ListPage(ctx, prefix, "", rev, 0)
	return kvs, at, err
}

// ListPage returns at most limit keys (0 = all) with the given prefix from
// start on, as of revision rev (0 = current); see Store.ListPage. It is
// one etcd range request from start (several for more than listPage
// keys), all at one revision.
func (s *Etcd) ListPage(ctx context.Context, prefix, start string, rev int64, limit int) ([]KV, int64, bool, error) {
	if s.closed.Load() {
		return nil, 0, false, ErrClosed
	}
	if rev < 0 {
		return nil, 0, false, fmt.Errorf("revision %d: %w", rev, errNegativeRevision)
	}
	from := s.prefix + max(prefix, start)
	end := clientv3.GetPrefixRangeEnd(s.prefix + prefix)
	var kvs []KV
	for {
		n := int64(listPage)
		if limit > 0 {
			n = min(n, int64(limit-len(kvs)))
		}
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithLimit(n))
		if err != nil {
			return nil, 0, false, s.wrap(ctx, fmt.Sprintf("list %q at revision %d", prefix, rev), err)
		}
		s.seen(resp.Header.Revision)
		if rev == 0 {
			rev = resp.Header.Revision // later pages read the same revision
		}
		for _, kv := range resp.Kvs {
			kvs = append(kvs, s.kv(kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return kvs, rev, false, nil
		}
		if limit > 0 && len(kvs) >= limit {
			return kvs, rev, true, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Count returns how many keys with the given prefix there are from start
// on, as of revision rev (0 = current); see Store.Count. It is one
// count-only range request.
func (s *Etcd) Count(ctx context.Context, prefix, start string, rev int64) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if rev < 0 {
		return 0, fmt.Errorf("revision %d: %w", rev, errNegativeRevision)
	}
	end := clientv3.GetPrefixRangeEnd(s.prefix + prefix)
	resp, err := s.cli.Get(ctx, s.prefix+max(prefix, start), clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithCountOnly())
	if err != nil {
		return 0, s.wrap(ctx, fmt.Sprintf("count %q at revision %d", prefix, rev), err)
	}
	s.seen(resp.Header.Revision)
	return resp.Count, nil
}

// CurrentRevision returns the revision of the last write committed to the
// etcd cluster, by anyone; it costs one linearizable read.
func (s *Etcd) CurrentRevision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, s.wrap(ctx, "current revision", err)
	}
	s.seen(resp.Header.Revision)
	return resp.Header.Revision, nil
}

// Compact discards etcd's history older than rev, for every user of the
// cluster. Compacting at or below the compacted revision does nothing;
// rev above the current revision → ErrFutureRevision.
func (s *Etcd) Compact(ctx context.Context, rev int64) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if rev <= 0 {
		return fmt.Errorf("compact to revision %d: %w", rev, errNegativeRevision)
	}
	_, err := s.cli.Compact(ctx, rev)
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return nil
	case err != nil:
		return s.wrap(ctx, fmt.Sprintf("compact to revision %d", rev), err)
	}
	for c := s.compacted.Load(); c < rev && !s.compacted.CompareAndSwap(c, rev); c = s.compacted.Load() {
	}
	s.lg.Debug("store compacted", "revision", rev)
	return nil
}

// CompactedRevision returns the highest revision this store compacted
// etcd to; other users of the cluster may have compacted further.
func (s *Etcd) CompactedRevision() int64 {
	return s.compacted.Load()
}

// check rejects calls on a closed store and empty keys.
func (s *Etcd) check(key string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if key == "" {
		return errEmptyKey
	}
	return nil
}

// kv builds a KV from an etcd key, stripping the prefix.
func (s *Etcd) kv(key, value []byte, createRev, modRev int64) KV {
	return KV{
		Key:            strings.TrimPrefix(string(key), s.prefix),
		Value:          value,
		CreateRevision: createRev,
		ModRevision:    modRev,
	}
}

// seen records rev as the highest revision observed, for the metrics.
func (s *Etcd) seen(rev int64) {
	for cur := s.rev.Load(); rev > cur && !s.rev.CompareAndSwap(cur, rev); cur = s.rev.Load() {
	}
}

// wrap turns an etcd client error into the store's: etcd's compacted and
// future-revision errors become ErrCompacted and ErrFutureRevision, any
// failure of a closed store ErrClosed; ctx's own error passes through.
func (s *Etcd) wrap(ctx context.Context, what string, err error) error {
	switch {
	case s.closed.Load():
		return ErrClosed
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("%s: %w", what, ErrCompacted)
	case errors.Is(err, rpctypes.ErrFutureRev):
		return fmt.Errorf("%s: %w", what, ErrFutureRevision)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%s: etcd: %w", what, err)
}

// Client returns the etcd client the store uses, for coordination that
// lives beside the objects (leader election, server leases). It is closed
// by Close.
func (s *Etcd) Client() *clientv3.Client { return s.cli }

// Prefix returns the prefix of every key the store writes in etcd.
func (s *Etcd) Prefix() string { return s.prefix }
