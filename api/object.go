package api

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/internal/envelope"
)

// Object is what DecodeObject needs of the object it fills: a k8s.io/api
// type, which decodes from both JSON and protobuf.
type Object interface {
	envelope.Unmarshaler
	GetObjectKind() schema.ObjectKind
}

// DecodeObject decodes a Change's object, in the Kubernetes protobuf
// envelope or JSON, into obj, which should be empty. Either way obj's
// apiVersion and kind are those the data names.
func DecodeObject(data []byte, obj Object) error {
	av, kind, err := envelope.DecodeAny(data, obj)
	if err != nil {
		return fmt.Errorf("decoding a session object: %w", err)
	}
	if av != "" || kind != "" {
		obj.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(av, kind))
	}
	return nil
}
