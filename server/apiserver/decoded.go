package apiserver

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/registry"
)

// Decoding a stored object costs more than twice what encoding it does,
// and every change of a watched object is decoded for filtered and JSON
// watchers and again for the next update of it. A write already holds the
// object it stores, so it hands a copy to the decode cache instead. The
// copy stands for what decoding the stored bytes gives: everything minik
// does with a decoded object (encode it as protobuf or JSON, compare specs
// and metadata on update, copy it for an update) treats the two alike.
// They may differ in two ways. Times finer than a second (metav1.Time)
// stay in the copy; both encodings drop them alike, and the times update
// rules compare are the server's own, which are whole seconds. Empty and
// nil lists and maps differ, which protobuf and the update comparisons
// treat alike but JSON does not: JSON for clients is made from decoded
// stored bytes instead (sendStored, writeWritten).

// decodeShared is the object stored under key at rev, decoded once for all
// who need it while it is recent. It must not be changed: callers that
// change it work on a DeepCopyObject.
func (s *Server) decodeShared(res *registry.Resource, key string, value []byte, rev int64) (runtime.Object, error) {
	key = cacheKey(res, key)
	return s.objects.get(key, rev, func() (runtime.Object, error) {
		// A watcher may see a change before the write that made it has
		// returned.
		if obj, err := s.writing.find(res, key, value, rev); obj != nil || err != nil {
			return obj, err
		}
		return decodeStored(res, value, rev)
	})
}

// cacheKey is the key under which the caches of decoded objects and of
// encoded events keep the object stored under key: key itself, but for a
// view, whose objects are of another type than those stored, and for a
// custom resource, whose versions share their stored objects.
func cacheKey(res *registry.Resource, key string) string {
	if res.Custom != nil {
		return res.GroupVersion().String() + "|" + strconv.FormatInt(res.Custom.Generation, 10) + "|" + key
	}
	if res.View == nil {
		return key
	}
	return res.Group + "|" + key
}

// storeAnnounced runs write, which stores obj as data under key and
// returns the revision written, with obj announced to decodeShared while
// it runs (see storing), whatever way write ends.
func (s *Server) storeAnnounced(res *registry.Resource, key string, obj runtime.Object, data []byte, write func() (int64, error)) (rev int64, err error) {
	done := s.storing(res, key, obj, data)
	defer func() {
		if err != nil {
			done(0)
			return
		}
		done(rev)
	}()
	return write()
}

// storing announces that obj is about to be stored as data under key, so
// that decodeShared takes a copy of obj rather than decoding data. The
// caller must call the returned done once the write has ended, with the
// revision written (0 if it failed), which keeps the copy in the cache.
func (s *Server) storing(res *registry.Resource, key string, obj runtime.Object, data []byte) (done func(rev int64)) {
	key = cacheKey(res, key)
	w := s.writing.add(res, key, obj, data)
	return func(rev int64) {
		// Once removed, the copy is the caller's alone.
		s.writing.remove(key, w)
		if rev > 0 && w != nil {
			s.objects.get(key, rev, func() (runtime.Object, error) {
				m, err := meta.Accessor(w.obj)
				if err != nil {
					return nil, err
				}
				m.SetResourceVersion(formatRV(rev))
				return w.obj, nil
			})
		}
	}
}

// expireCaches drops the cached values of changes made before cutoff.
func (s *Server) expireCaches(cutoff time.Time) {
	s.objects.expire(cutoff)
	s.events.expire(cutoff)
	s.jsonEvents.expire(cutoff)
}

// decodedCopy is a copy of obj as decodeStored returns it at rev (any
// revision if rev is 0).
func decodedCopy(res *registry.Resource, obj runtime.Object, rev int64) (runtime.Object, error) {
	kept := obj.DeepCopyObject()
	setTypeMeta(kept, res)
	m, err := meta.Accessor(kept)
	if err != nil {
		return nil, err
	}
	if rev > 0 {
		m.SetResourceVersion(formatRV(rev))
	}
	return kept, nil
}

// writesInFlight are the objects being stored, by key. The zero value is
// ready to use and safe for concurrent use.
type writesInFlight struct {
	mu sync.Mutex
	m  map[string][]*writeInFlight // guarded by mu
}

// writeInFlight is a copy of an object as decodeStored would return it,
// but for its resourceVersion, and the bytes it is stored as.
type writeInFlight struct {
	obj  runtime.Object // read only under writesInFlight.mu while in flight
	data []byte
}

func (f *writesInFlight) add(res *registry.Resource, key string, obj runtime.Object, data []byte) *writeInFlight {
	kept, err := decodedCopy(res, obj, 0)
	if err != nil {
		return nil
	}
	w := &writeInFlight{obj: kept, data: data}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string][]*writeInFlight{}
	}
	f.m[key] = append(f.m[key], w)
	return w
}

func (f *writesInFlight) remove(key string, w *writeInFlight) {
	if w == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ws := f.m[key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(f.m, key)
	} else {
		f.m[key] = ws
	}
}

// find returns a copy at rev of the object being stored under key as
// value, or nil. Equal bytes decode to equal objects, whichever write they
// came from. The copy is made under the lock: the write may take its
// object back as soon as it is out of the set.
func (f *writesInFlight) find(res *registry.Resource, key string, value []byte, rev int64) (runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.m[key] {
		if bytes.Equal(w.data, value) {
			return decodedCopy(res, w.obj, rev)
		}
	}
	return nil, nil
}
