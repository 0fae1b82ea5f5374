package registry

import (
	"bytes"
	"strconv"
)

// Stored values are the JSON of typed objects without resourceVersion:
// {"kind":…,"apiVersion":…,"metadata":{…},…}. Readers that pass that JSON
// on put the revision in with WithResourceVersion instead of decoding and
// encoding the object again.

var (
	typedObjectOpen = []byte(`{"kind":"`)
	metadataOpen    = []byte(`,"metadata":{`)
	resourceVersion = []byte(`"resourceVersion":`)
)

// WithResourceVersion returns stored with metadata.resourceVersion set to
// rev, first in the metadata. It returns nil when stored does not have the
// shape above or already has a resourceVersion: the caller then decodes it.
func WithResourceVersion(stored []byte, rev int64) []byte {
	if !bytes.HasPrefix(stored, typedObjectOpen) {
		return nil
	}
	// kind and apiVersion are plain strings without escapes, so the first
	// ,"metadata":{ after them opens the object's metadata.
	i := bytes.Index(stored, metadataOpen)
	if i < 0 || bytes.IndexByte(stored[:i], '\\') >= 0 || bytes.Contains(stored, resourceVersion) {
		return nil
	}
	i += len(metadataOpen)
	out := make([]byte, 0, len(stored)+32)
	out = append(out, stored[:i]...)
	out = append(out, `"resourceVersion":"`...)
	out = strconv.AppendInt(out, rev, 10)
	out = append(out, '"')
	if stored[i] != '}' {
		out = append(out, ',')
	}
	return append(out, stored[i:]...)
}
