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

// eventCacheSize is how many encoded watch objects are kept for watchers
// of the same change.
const eventCacheSize = 1024

// eventKey names one change: a storage key at a revision.
type eventKey struct {
	key string
	rev int64
}

// eventCache holds the protobuf envelopes of recent changes, so that each
// change is decoded from its stored JSON and encoded once however many
// protobuf watchers it goes to. Safe for concurrent use.
type eventCache struct {
	mu   sync.Mutex
	m    map[eventKey][]byte // guarded by mu; values are shared and read-only
	ring []eventKey          // guarded by mu; insertion order, for eviction
	next int                 // guarded by mu; next slot of ring to reuse
}

func newEventCache() *eventCache {
	return &eventCache{m: make(map[eventKey][]byte, eventCacheSize), ring: make([]eventKey, 0, eventCacheSize)}
}

// get returns the envelope of the object stored under key at rev, calling
// encode on a miss. The returned bytes must not be changed.
func (c *eventCache) get(key string, rev int64, encode func() ([]byte, error)) ([]byte, error) {
	k := eventKey{key, rev}
	c.mu.Lock()
	data, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return data, nil
	}
	data, err := encode()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return data, nil
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, k)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % len(c.ring)
	}
	c.m[k] = data
	return data, nil
}
