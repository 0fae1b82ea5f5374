package apiserver

import (
	"bytes"
	"encoding/binary"
	"net/http"

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
