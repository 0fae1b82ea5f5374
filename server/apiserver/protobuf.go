package apiserver

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik-dev/minik/server/registry"
)

// Clients that list application/vnd.kubernetes.protobuf in Accept (client-go
// when asked to, and the in-process loopback clients) get objects, lists
// and watch events in the Kubernetes protobuf encoding, as from upstream:
// objects in the envelope "k8s\x00" + runtime.Unknown, watch streams as
// length-delimited metav1.WatchEvent frames whose object is such an
// envelope. Tables, partial metadata and errors stay JSON.

// protobufWatchType is the Content-Type of a protobuf watch stream.
const protobufWatchType = protobufType + ";stream=watch"

// protoMarshaler is what the protobuf serializer needs of an object.
type protoMarshaler interface {
	Marshal() ([]byte, error)
}

// canProtobuf reports whether objects of res have a protobuf encoding.
func canProtobuf(res *registry.Resource) bool {
	_, ok := res.New().(protoMarshaler)
	return ok
}

// encodeProtobuf is obj in the protobuf envelope; obj's apiVersion and kind
// must be set.
func encodeProtobuf(obj runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	if err := protobufCodec.Encode(obj, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeProtobuf writes obj in protobuf, or in JSON if it has no protobuf
// encoding.
func writeProtobuf(w http.ResponseWriter, code int, obj runtime.Object) {
	data, err := encodeProtobuf(obj)
	if err != nil {
		writeJSON(w, code, obj)
		return
	}
	w.Header().Set("Content-Type", protobufType)
	w.WriteHeader(code)
	w.Write(data)
}

// watchFrame is one frame of a protobuf watch stream: the length of the
// metav1.WatchEvent, big-endian in four bytes, then the event, whose object
// is the envelope obj.
func watchFrame(t watch.EventType, obj []byte) ([]byte, error) {
	ev := metav1.WatchEvent{Type: string(t), Object: runtime.RawExtension{Raw: obj}}
	n := ev.Size()
	frame := make([]byte, 4+n)
	binary.BigEndian.PutUint32(frame, uint32(n))
	if _, err := ev.MarshalToSizedBuffer(frame[4:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// revCacheSize is how many recent changes a revCache holds.
const revCacheSize = 4096

// eventKey names one change: a storage key at a revision.
type eventKey struct {
	key string
	rev int64
}

// revCache holds values derived from recent changes (their decoded
// objects, their protobuf envelopes), so that each is made once however
// many readers and watchers need it. A storage key at a revision always
// names the same stored value, so entries never go stale; the oldest are
// evicted. Safe for concurrent use.
type revCache[V any] struct {
	mu   sync.Mutex
	m    map[eventKey]V // guarded by mu; values are shared and read-only
	ring []eventKey     // guarded by mu; insertion order, for eviction
	next int            // guarded by mu; next slot of ring to reuse
}

func newRevCache[V any]() *revCache[V] {
	return &revCache[V]{m: make(map[eventKey]V, revCacheSize), ring: make([]eventKey, 0, revCacheSize)}
}

// peek returns the value for key at rev if it is held. It must not be
// changed.
func (c *revCache[V]) peek(key string, rev int64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[eventKey{key, rev}]
	return v, ok
}

// get returns the value for key at rev, calling make on a miss; a failure
// is not kept. The returned value must not be changed.
func (c *revCache[V]) get(key string, rev int64, make func() (V, error)) (V, error) {
	k := eventKey{key, rev}
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := make()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return v, nil
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, k)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % len(c.ring)
	}
	c.m[k] = v
	return v, nil
}
