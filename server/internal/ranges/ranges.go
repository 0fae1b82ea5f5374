// Package ranges hands out the items of a range — Service cluster IPs,
// NodePorts, nodes' podCIDRs — to one owner each, recorded in the store.
//
// Each taken item is a key of its own, created atomically and holding
// its owner, so two servers (or two requests) can never take the same
// item, and a restarted server finds what was taken.
package ranges

import (
	"context"
	"errors"

	"github.com/minik-dev/minik/store"
)

var (
	// ErrTaken: the item is recorded as taken (by any owner).
	ErrTaken = errors.New("ranges: item already taken")
	// ErrFull: no item of the range is free.
	ErrFull = errors.New("ranges: range is full")
)

// Range is size items numbered 0 to size-1, the taken ones recorded under
// a key prefix. Its methods are safe for concurrent use, from any number
// of servers sharing the store.
type Range struct {
	st     store.Store
	prefix string
	size   uint32
	name   func(i uint32) string
}

// New returns the range of size items whose records live at
// prefix+name(i).
func New(st store.Store, prefix string, size uint32, name func(i uint32) string) *Range {
	return &Range{st: st, prefix: prefix, size: size, name: name}
}

// Size is the number of items.
func (r *Range) Size() uint32 { return r.size }

// Key is where item i is recorded when taken.
func (r *Range) Key(i uint32) string { return r.prefix + r.name(i) }

// Take records item i as owner's. It returns ErrTaken when i is taken
// already, by owner or any other.
func (r *Range) Take(ctx context.Context, i uint32, owner string) error {
	_, err := r.st.Create(ctx, r.Key(i), []byte(owner))
	if errors.Is(err, store.ErrExists) {
		return ErrTaken
	}
	return err
}

// TakeFree takes for owner the first free item from start on, wrapping
// around, that skip (if not nil) does not rule out, and returns it; ErrFull
// when there is none. taken, if not nil, is told of each item found
// taken: an error from it ends the search, returned with that item.
// Another error of the store is returned with the item it arose on.
func (r *Range) TakeFree(ctx context.Context, start uint32, owner string, skip func(i uint32) bool, taken func(i uint32) error) (uint32, error) {
	for n := range r.size {
		i := (start + n) % r.size
		if skip != nil && skip(i) {
			continue
		}
		err := r.Take(ctx, i, owner)
		if errors.Is(err, ErrTaken) {
			if taken != nil {
				if err := taken(i); err != nil {
					return i, err
				}
			}
			continue
		}
		return i, err
	}
	return 0, ErrFull
}

// Owner returns who holds item i, with the revision of its record;
// store.ErrNotFound when i is free.
func (r *Range) Owner(ctx context.Context, i uint32) (owner string, rev int64, err error) {
	kv, err := r.st.Get(ctx, r.Key(i))
	if err != nil {
		return "", 0, err
	}
	return string(kv.Value), kv.ModRevision, nil
}

// Release frees item i, whoever holds it; a free item is no error.
func (r *Range) Release(ctx context.Context, i uint32) error {
	_, _, err := r.st.Delete(ctx, r.Key(i), 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// ReleaseOwned frees item i if owner holds it. It returns
// store.ErrNotFound when i is free, and store.ErrConflict when another
// owner holds it or took it meanwhile.
func (r *Range) ReleaseOwned(ctx context.Context, i uint32, owner string) error {
	holder, rev, err := r.Owner(ctx, i)
	if err != nil {
		return err
	}
	if holder != owner {
		return store.ErrConflict
	}
	_, _, err = r.st.Delete(ctx, r.Key(i), rev)
	return err
}

// Owned returns the records of the items owner holds, in key order; the
// caller owns the slice.
func (r *Range) Owned(ctx context.Context, owner string) ([]store.KV, error) {
	kvs, _, err := r.st.List(ctx, r.prefix, 0)
	if err != nil {
		return nil, err
	}
	var out []store.KV
	for _, kv := range kvs {
		if string(kv.Value) == owner {
			out = append(out, kv)
		}
	}
	return out, nil
}
