package apiserver

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Responses are built from stored bytes, with the revision put in, when
// the client wants the form the object is stored in (protobuf, or JSON for
// values written by earlier versions), instead of decoding and encoding
// the object again.

// wantsPlainJSON reports whether a list may be written from stored JSON.
func wantsPlainJSON(r *http.Request) bool {
	out, _, err := negotiate(r)
	return err == nil && out == outputObject
}

// writeRaw writes one stored object in the representation r asks for, if
// that can be made from the stored bytes; false if it cannot.
func writeRaw(w http.ResponseWriter, r *http.Request, code int, stored []byte, rev int64) bool {
	out, _, err := negotiate(r)
	if err != nil {
		return false
	}
	var data []byte
	var contentType string
	switch out {
	case outputObject:
		data, contentType = registry.JSONWithResourceVersion(stored, rev), "application/json"
	case outputProtobuf:
		data, contentType = registry.ProtobufWithResourceVersion(stored, rev), protobufType
	}
	if data == nil {
		return false
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	w.Write(data)
	return true
}

// writeRawList writes a list of stored JSON objects as KIND List JSON;
// false if one is not stored as JSON.
func writeRawList(w http.ResponseWriter, res *registry.Resource, kvs []store.KV, listRev int64, cont string) bool {
	var buf bytes.Buffer
	buf.WriteString(`{"kind":"` + res.Kind + `List","apiVersion":"` + res.GroupVersion().String() + `","metadata":{"resourceVersion":"`)
	buf.WriteString(strconv.FormatInt(listRev, 10))
	buf.WriteByte('"')
	if cont != "" {
		buf.WriteString(`,"continue":"` + cont + `"`)
	}
	buf.WriteString(`},"items":[`)
	for i, kv := range kvs {
		item := registry.JSONWithResourceVersion(kv.Value, kv.ModRevision)
		if item == nil {
			return false
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(item)
	}
	buf.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return true
}
