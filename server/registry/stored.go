package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/internal/envelope"
)

// Stored values are objects without resourceVersion (the store's revision
// is the object's resourceVersion) in the Kubernetes protobuf envelope, as
// upstream keeps them in etcd (see package envelope). Values written by
// earlier versions are JSON: {"kind":…,"apiVersion":…,"metadata":{…},…};
// every reader takes both, and an object is stored as protobuf the next
// time it is written.
//
// Readers that pass a stored object on put the revision into the stored
// bytes (ProtobufWithResourceVersion, JSONWithResourceVersion) instead of
// decoding and encoding the object again.

// EncodeStored returns the stored form of obj, an object of res: obj as
// it is (converted when res is a view) but without its resourceVersion,
// which it keeps.
func EncodeStored(res *Resource, obj runtime.Object) ([]byte, error) {
	if res.Custom != nil {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return nil, fmt.Errorf("storing %s: %T is not unstructured", res.Kind, obj)
		}
		return EncodeCustom(res, u)
	}
	if res.View != nil {
		// The stored copy gets obj's resourceVersion back below; obj is
		// left as it is.
		obj, res = res.View.ToStored(obj), res.View.Of
	}
	m, ok := obj.(interface {
		envelope.Message
		GetResourceVersion() string
		SetResourceVersion(string)
	})
	if !ok {
		return nil, fmt.Errorf("storing %s: %T has no protobuf encoding", res.Kind, obj)
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	return envelope.Encode(m, res.GroupVersion().String(), res.Kind)
}

// DecodeStored decodes a stored value of either form into obj, a new
// object of the value's kind. The resourceVersion is left unset and, for
// a protobuf value, so are apiVersion and kind.
func DecodeStored(value []byte, obj runtime.Object) error {
	u, ok := obj.(envelope.Unmarshaler)
	if !ok {
		return fmt.Errorf("decoding a stored %T: no protobuf encoding", obj)
	}
	_, _, err := envelope.DecodeAny(value, u)
	return err
}

// ProtobufWithResourceVersion returns a stored protobuf value in the
// envelope with metadata.resourceVersion set to rev, or nil when stored is
// JSON or malformed: the caller then decodes it.
func ProtobufWithResourceVersion(stored []byte, rev int64) []byte {
	if !envelope.Is(stored) {
		return nil
	}
	out, err := envelope.WithResourceVersion(stored, rev)
	if err != nil {
		return nil
	}
	return out
}

// StoredPodNodeName returns spec.nodeName of a stored pod ("" if unbound);
// ok is false if the value cannot be read.
func StoredPodNodeName(value []byte) (name string, ok bool) {
	if envelope.Is(value) {
		name, err := envelope.PodNodeName(value)
		return name, err == nil
	}
	// Every pod is created unbound: skip decoding what surely has no
	// nodeName key.
	if !bytes.Contains(value, []byte(`"nodeName":`)) {
		return "", true
	}
	var p struct {
		Spec struct {
			NodeName string `json:"nodeName"`
		} `json:"spec"`
	}
	if json.Unmarshal(value, &p) != nil {
		return "", false
	}
	return p.Spec.NodeName, true
}

var (
	typedObjectOpen = []byte(`{"kind":"`)
	metadataOpen    = []byte(`,"metadata":{`)
	resourceVersion = []byte(`"resourceVersion":`)
)

// JSONWithResourceVersion returns a stored JSON value with
// metadata.resourceVersion set to rev, first in the metadata. It returns
// nil when stored is protobuf, does not have the shape above or already
// has a resourceVersion: the caller then decodes it.
func JSONWithResourceVersion(stored []byte, rev int64) []byte {
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
