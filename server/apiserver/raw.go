package apiserver

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Stored values are the JSON of typed objects without resourceVersion.
// When a client wants plain JSON, responses are built from those bytes,
// with the revision put in (registry.WithResourceVersion), instead of
// decoding and encoding again.

// wantsPlainJSON reports whether the response may be written from stored
// bytes.
func wantsPlainJSON(r *http.Request) bool {
	out, _, err := negotiate(r)
	return err == nil && out == outputObject
}

// writeRaw writes one stored object; false if it could not.
func writeRaw(w http.ResponseWriter, code int, stored []byte, rev int64) bool {
	data := registry.WithResourceVersion(stored, rev)
	if data == nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
	return true
}

// writeRawList writes a list of stored objects as KIND List JSON.
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
		item := registry.WithResourceVersion(kv.Value, kv.ModRevision)
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
