package store

import (
	"context"
	"errors"
)

// Sentinel errors returned by every Store implementation. Callers test them
// with errors.Is; implementations wrap them with the key or revision involved.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: Create found the key already present.
	ErrExists = errors.New("store: already exists")
	// ErrConflict: the expected revision of an Update or Delete is stale.
	ErrConflict = errors.New("store: revision conflict")
	// ErrCompacted: the requested revision is older than the compacted one.
	ErrCompacted = errors.New("store: revision compacted")
	// ErrFutureRevision: the requested revision has not been written yet.
	ErrFutureRevision = errors.New("store: future revision")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store: closed")
)

// KV is one stored object. Value is owned by the caller once returned.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the revision at which the key was (last) created.
	CreateRevision int64
	// ModRevision is the revision of the last write to the key; it is the
	// object's resourceVersion.
	ModRevision int64
}

// EventType says what happened to a key.
type EventType int

const (
	// EventCreate: the key did not exist before this revision.
	EventCreate EventType = iota + 1
	// EventUpdate: the key existed and got a new value.
	EventUpdate
	// EventDelete: the key was removed; Value holds its last value.
	EventDelete
	// EventProgress carries no key: every event with a revision up to and
	// including Revision that matches the watch has been delivered.
	EventProgress
	// EventError ends the stream; Err says why (ErrCompacted when the
	// watcher fell behind the compacted revision and cannot be caught up).
	EventError
)

func (t EventType) String() string {
	switch t {
	case EventCreate:
		return "CREATE"
	case EventUpdate:
		return "UPDATE"
	case EventDelete:
		return "DELETE"
	case EventProgress:
		return "PROGRESS"
	case EventError:
		return "ERROR"
	}
	return "UNKNOWN"
}

// Event is one change seen by a watcher.
type Event struct {
	Type      EventType
	Key       string
	Value     []byte // new value; for EventDelete the value before deletion
	PrevValue []byte // value before this revision; nil for EventCreate
	// Revision is the revision of this change (ModRevision of the key after
	// it, or the deletion revision).
	Revision int64
	// CreateRevision of the key (for EventDelete: of the deleted key).
	CreateRevision int64
	Err            error // set only for EventError
}

// Store is a revisioned key-value store with a watch log. Keys are plain
// strings ("/registry/pods/default/web-1"); values are opaque bytes.
//
// Every successful write gets the next global revision, an int64 that only
// grows. A write returns only once it is durable. All methods are safe for
// concurrent use.
type Store interface {
	// Create stores value under key if the key does not exist, and returns
	// the revision of the write. Present key → ErrExists.
	Create(ctx context.Context, key string, value []byte) (int64, error)

	// Update replaces the value of an existing key. expectedRev > 0 must
	// equal the key's ModRevision (else ErrConflict); 0 skips the check.
	// Missing key → ErrNotFound. Returns the new revision.
	Update(ctx context.Context, key string, value []byte, expectedRev int64) (int64, error)

	// Delete removes key. expectedRev as for Update. Returns the revision
	// of the deletion and the value removed. Missing key → ErrNotFound.
	Delete(ctx context.Context, key string, expectedRev int64) (int64, KV, error)

	// Get returns the current value of key. Missing key → ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)

	// List returns every key with the given prefix, sorted by key, as of
	// revision rev (0 = current), and the revision the list reflects.
	// rev below the compacted revision → ErrCompacted; above the current
	// one → ErrFutureRevision. The returned slice belongs to the caller.
	List(ctx context.Context, prefix string, rev int64) ([]KV, int64, error)

	// ListPage is List over part of the prefix: the keys with the prefix
	// from start on (start "" = from the first), sorted by key, at most
	// limit of them (0 = all), as of revision rev (0 = current). It
	// returns them, the revision they reflect, and whether more keys with
	// the prefix follow the last one returned. A page costs what it
	// returns (plus, at a past revision, the writes since), not the whole
	// prefix: pages read at the revision of the first one make up one
	// consistent list. Errors as for List.
	ListPage(ctx context.Context, prefix, start string, rev int64, limit int) ([]KV, int64, bool, error)

	// Count returns how many keys with the given prefix there are from
	// start on, as of revision rev (0 = current), without reading their
	// values. Errors as for List.
	Count(ctx context.Context, prefix, start string, rev int64) (int64, error)

	// Watch delivers, in revision order, every change to keys with the
	// given prefix made after revision rev (0 = from the current revision
	// on), none missed or repeated, plus periodic EventProgress. The channel
	// is closed after ctx ends or after an EventError. rev below the
	// compacted revision → ErrCompacted (returned at once). A slow reader
	// never blocks writers: it is caught up from the log, or gets an
	// EventError with ErrCompacted if the log no longer covers it.
	Watch(ctx context.Context, prefix string, rev int64) (<-chan Event, error)

	// CurrentRevision returns the revision of the last committed write.
	CurrentRevision(ctx context.Context) (int64, error)

	// Compact discards history older than rev: afterwards List at a revision
	// below rev, and Watch from a revision below rev, fail with ErrCompacted.
	// rev above the current revision → ErrFutureRevision.
	Compact(ctx context.Context, rev int64) error

	// Close releases the store; pending writes fail with ErrClosed.
	Close() error
}
