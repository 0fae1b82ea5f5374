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
// with the revision put in, instead of decoding and encoding again.

var metadataOpen = []byte(`"metadata":{`)

// withRV returns stored JSON with metadata.resourceVersion set to rev, or
// nil if stored does not have the expected shape.
func withRV(stored []byte, rev int64) []byte {
	i := bytes.Index(stored, metadataOpen)
	if i < 0 {
		return nil
	}
	i += len(metadataOpen)
	out := make([]byte, 0, len(stored)+40)
	out = append(out, stored[:i]...)
	out = append(out, `"resourceVersion":"`...)
	out = strconv.AppendInt(out, rev, 10)
	out = append(out, '"')
	if stored[i] != '}' {
		out = append(out, ',')
	}
	return append(out, stored[i:]...)
}

// wantsPlainJSON reports whether the response may be written from stored
// bytes.
func wantsPlainJSON(r *http.Request) bool {
	out, _, err := negotiate(r)
	return err == nil && out == outputObject
}

// writeRaw writes one stored object; false if it could not.
func writeRaw(w http.ResponseWriter, code int, stored []byte, rev int64) bool {
	data := withRV(stored, rev)
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
		item := withRV(kv.Value, kv.ModRevision)
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
