package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/internal/envelope"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Responses are built from stored bytes, with the revision put in, when
// the client wants the form the object is stored in (protobuf, or JSON for
// values written by earlier versions), instead of decoding and encoding
// the object again.

// writeRaw writes one stored object in the representation r asks for, if
// that can be made from the stored bytes; false if it cannot.
func writeRaw(w http.ResponseWriter, r *http.Request, code int, stored []byte, rev int64) bool {
	return writeFromStored(w, r, code,
		func() []byte { return registry.JSONWithResourceVersion(stored, rev) },
		func() []byte { return registry.ProtobufWithResourceVersion(stored, rev) })
}

// writeRawList writes a list of stored objects, of res, in the
// representation r asks for, if that can be made from the stored bytes;
// false if it cannot (the representation, or an object not stored in it).
func writeRawList(w http.ResponseWriter, r *http.Request, res *registry.Resource, kvs []store.KV, lm metav1.ListMeta) bool {
	return writeFromStored(w, r, http.StatusOK,
		func() []byte { return jsonList(res, kvs, lm) },
		func() []byte { return protobufList(res, kvs, lm) })
}

// writeFromStored writes what asJSON or asProtobuf makes, whichever r asks
// for; false if r asks for neither or it makes nothing.
func writeFromStored(w http.ResponseWriter, r *http.Request, code int, asJSON, asProtobuf func() []byte) bool {
	out, _, err := negotiate(r)
	if err != nil {
		return false
	}
	var data []byte
	var contentType string
	switch out {
	case outputObject:
		data, contentType = asJSON(), "application/json"
	case outputProtobuf:
		data, contentType = asProtobuf(), protobufType
	}
	if data == nil {
		return false
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	w.Write(data)
	return true
}

// jsonList is the KIND List JSON of stored JSON objects, or nil if one is
// not stored as JSON.
func jsonList(res *registry.Resource, kvs []store.KV, lm metav1.ListMeta) []byte {
	meta, err := json.Marshal(lm)
	if err != nil {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString(`{"kind":"` + res.Kind + `List","apiVersion":"` + res.GroupVersion().String() + `","metadata":`)
	buf.Write(meta)
	buf.WriteString(`,"items":[`)
	for i, kv := range kvs {
		item := registry.JSONWithResourceVersion(kv.Value, kv.ModRevision)
		if item == nil {
			return nil
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(item)
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// protobufList is the KIND List, in the protobuf envelope, of stored
// protobuf objects, or nil if one is not stored in protobuf.
func protobufList(res *registry.Resource, kvs []store.KV, listMeta metav1.ListMeta) []byte {
	lm, err := listMeta.Marshal()
	if err != nil {
		return nil
	}
	items := make([][]byte, len(kvs))
	for i, kv := range kvs {
		if !envelope.Is(kv.Value) {
			return nil
		}
		if items[i], err = envelope.ObjectWithResourceVersion(kv.Value, kv.ModRevision); err != nil {
			return nil
		}
	}
	return envelope.EncodeList(res.GroupVersion().String(), res.Kind+"List", lm, items)
}
