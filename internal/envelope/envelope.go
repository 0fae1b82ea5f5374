// Package envelope reads and writes Kubernetes objects in the protobuf
// envelope of the Kubernetes API: the four bytes "k8s\x00", then a
// runtime.Unknown message whose typeMeta names the object's apiVersion and
// kind and whose raw field holds the object's own protobuf encoding.
//
// The server stores objects in this form and sends them to agents in it,
// so that a watch event or a session change can be made from the stored
// bytes without decoding the object: WithResourceVersion puts the
// revision into the bytes and PodNodeName reads one field out of them.
//
// Field numbers used here are those of k8s.io/apimachinery's
// runtime.Unknown (typeMeta 1, raw 2, contentEncoding 3, contentType 4),
// of every top-level object (metadata 1, spec 2), of ObjectMeta
// (resourceVersion 6), of PodSpec (nodeName 10) and of every list
// (metadata 1, items 2).
package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic opens every envelope.
var Magic = []byte("k8s\x00")

// ErrMalformed is returned for bytes that are not a well-formed envelope.
var ErrMalformed = errors.New("envelope: malformed")

// Message is what Encode needs of an object: the marshalling methods that
// k8s.io/api types generate.
type Message interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// Unmarshaler is what Decode needs of an object. Generated Unmarshal
// methods merge into what the object holds, so it should be empty.
type Unmarshaler interface {
	Unmarshal([]byte) error
}

const (
	unknownTypeMeta = 1
	unknownRaw      = 2
	unknownEncoding = 3
	unknownType     = 4

	typeMetaAPIVersion = 1
	typeMetaKind       = 2

	objectMetadata = 1
	objectSpec     = 2

	listMetadata = 1
	listItems    = 2

	metaResourceVersion = 6
	podSpecNodeName     = 10
)

// Is reports whether data starts like an envelope. JSON objects start
// with '{', so the two stored forms are told apart by their first byte.
func Is(data []byte) bool { return bytes.HasPrefix(data, Magic) }

// Encode returns obj in an envelope naming apiVersion and kind. The bytes
// are those the Kubernetes protobuf serializer writes for the same object.
func Encode(obj Message, apiVersion, kind string) ([]byte, error) {
	n := obj.Size()
	out := appendHeader(apiVersion, kind, n)
	start := len(out)
	out = out[:start+n]
	if _, err := obj.MarshalToSizedBuffer(out[start:]); err != nil {
		return nil, err
	}
	// The serializer writes the empty contentEncoding and contentType too.
	out = appendString(out, unknownEncoding, "")
	return appendString(out, unknownType, ""), nil
}

// Decode decodes the envelope data into obj and returns the apiVersion and
// kind it names.
func Decode(data []byte, obj Unmarshaler) (apiVersion, kind string, err error) {
	e, err := parse(data)
	if err != nil {
		return "", "", err
	}
	if err := obj.Unmarshal(e.raw); err != nil {
		return "", "", fmt.Errorf("envelope: decoding %s: %w", e.kind, err)
	}
	return e.apiVersion, e.kind, nil
}

// DecodeAny decodes data into obj: an envelope, or else the JSON of an
// object (the form objects took before they were stored in envelopes).
// It returns the apiVersion and kind an envelope names; JSON sets them in
// obj itself, and they are returned empty.
func DecodeAny(data []byte, obj Unmarshaler) (apiVersion, kind string, err error) {
	if !Is(data) {
		return "", "", json.Unmarshal(data, obj)
	}
	return Decode(data, obj)
}

// Kind returns the apiVersion and kind the envelope data names.
func Kind(data []byte) (apiVersion, kind string, err error) {
	e, err := parse(data)
	return e.apiVersion, e.kind, err
}

// WithResourceVersion returns a copy of the envelope data whose object has
// metadata.resourceVersion set to rev, without decoding the object: the
// field is added at the end of the metadata, where it overrides any
// earlier value, as protobuf decoders keep the last value of a field.
func WithResourceVersion(data []byte, rev int64) ([]byte, error) {
	e, err := parse(data)
	if err != nil {
		return nil, err
	}
	obj, err := withResourceVersion(e.raw, rev)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data)-len(e.raw)+len(obj)+8)
	out = append(out, data[:e.rawStart]...)
	out = protowire.AppendTag(out, unknownRaw, protowire.BytesType)
	out = protowire.AppendBytes(out, obj)
	return append(out, data[e.rawEnd:]...), nil
}

// ObjectWithResourceVersion returns the object in the envelope data, in
// its own protobuf encoding (as it appears among a list's items), with
// metadata.resourceVersion set to rev.
func ObjectWithResourceVersion(data []byte, rev int64) ([]byte, error) {
	e, err := parse(data)
	if err != nil {
		return nil, err
	}
	return withResourceVersion(e.raw, rev)
}

// withResourceVersion returns a copy of the object message obj with rev
// added to the end of its metadata.
func withResourceVersion(obj []byte, rev int64) ([]byte, error) {
	meta, metaStart, metaEnd, err := lastField(obj, objectMetadata)
	if err != nil {
		return nil, err
	}
	if metaStart < 0 {
		metaStart, metaEnd = len(obj), len(obj)
	}
	rv := strconv.FormatInt(rev, 10)
	metaLen := len(meta) + protowire.SizeTag(metaResourceVersion) + protowire.SizeBytes(len(rv))
	out := make([]byte, 0, len(obj)-(metaEnd-metaStart)+protowire.SizeTag(objectMetadata)+protowire.SizeBytes(metaLen))
	out = append(out, obj[:metaStart]...)
	out = protowire.AppendTag(out, objectMetadata, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(metaLen))
	out = append(out, meta...)
	out = appendString(out, metaResourceVersion, rv)
	return append(out, obj[metaEnd:]...), nil
}

// EncodeList returns, in an envelope naming apiVersion and kind, a list
// (PodList, ServiceList, …) with the encoded metav1.ListMeta listMeta and
// the objects items, each in its own protobuf encoding (see
// ObjectWithResourceVersion). Every Kubernetes list has its metadata as
// field 1 and its items as field 2.
func EncodeList(apiVersion, kind string, listMeta []byte, items [][]byte) []byte {
	n := protowire.SizeTag(listMetadata) + protowire.SizeBytes(len(listMeta))
	for _, it := range items {
		n += protowire.SizeTag(listItems) + protowire.SizeBytes(len(it))
	}
	out := appendHeader(apiVersion, kind, n)
	out = protowire.AppendTag(out, listMetadata, protowire.BytesType)
	out = protowire.AppendBytes(out, listMeta)
	for _, it := range items {
		out = protowire.AppendTag(out, listItems, protowire.BytesType)
		out = protowire.AppendBytes(out, it)
	}
	out = appendString(out, unknownEncoding, "")
	return appendString(out, unknownType, "")
}

// PodNodeName returns spec.nodeName of the pod in the envelope data, ""
// if it has none.
func PodNodeName(data []byte) (string, error) {
	e, err := parse(data)
	if err != nil {
		return "", err
	}
	spec, _, _, err := lastField(e.raw, objectSpec)
	if err != nil {
		return "", err
	}
	name, _, _, err := lastField(spec, podSpecNodeName)
	return string(name), err
}

// envelope is a parsed envelope. raw is data[rawStart:rawEnd] less the
// field's tag and length, rawStart and rawEnd bound the whole raw field.
type envelope struct {
	apiVersion, kind string
	raw              []byte
	rawStart, rawEnd int
}

func parse(data []byte) (envelope, error) {
	var e envelope
	if !Is(data) {
		return e, fmt.Errorf("%w: no magic number", ErrMalformed)
	}
	e.rawStart = -1
	err := eachField(data[len(Magic):], func(num protowire.Number, v []byte, start, end int) error {
		switch num {
		case unknownTypeMeta:
			av, _, _, err := lastField(v, typeMetaAPIVersion)
			if err != nil {
				return err
			}
			k, _, _, err := lastField(v, typeMetaKind)
			e.apiVersion, e.kind = string(av), string(k)
			return err
		case unknownRaw:
			e.raw, e.rawStart, e.rawEnd = v, len(Magic)+start, len(Magic)+end
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	if e.rawStart < 0 {
		return e, fmt.Errorf("%w: no object", ErrMalformed)
	}
	return e, nil
}

// lastField returns the value of the last length-delimited field num of
// the message msg, and where that field starts and ends in msg (start -1
// if there is none).
func lastField(msg []byte, num protowire.Number) (v []byte, start, end int, err error) {
	start = -1
	err = eachField(msg, func(n protowire.Number, fv []byte, s, e int) error {
		if n == num {
			v, start, end = fv, s, e
		}
		return nil
	})
	return v, start, end, err
}

// eachField calls fn for every field of msg with its number, its value if
// length-delimited (else nil), and where it starts and ends in msg.
func eachField(msg []byte, fn func(num protowire.Number, v []byte, start, end int) error) error {
	for i := 0; i < len(msg); {
		num, typ, n := protowire.ConsumeTag(msg[i:])
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		var v []byte
		m := 0
		if typ == protowire.BytesType {
			v, m = protowire.ConsumeBytes(msg[i+n:])
		} else {
			m = protowire.ConsumeFieldValue(num, typ, msg[i+n:])
		}
		if m < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(m))
		}
		if err := fn(num, v, i, i+n+m); err != nil {
			return err
		}
		i += n + m
	}
	return nil
}

// appendHeader returns a new envelope up to its object, of n bytes, with
// room for the object and the fields after it.
func appendHeader(apiVersion, kind string, n int) []byte {
	var tm []byte
	tm = appendString(tm, typeMetaAPIVersion, apiVersion)
	tm = appendString(tm, typeMetaKind, kind)
	out := make([]byte, 0, len(Magic)+len(tm)+n+24)
	out = append(out, Magic...)
	out = protowire.AppendTag(out, unknownTypeMeta, protowire.BytesType)
	out = protowire.AppendBytes(out, tm)
	out = protowire.AppendTag(out, unknownRaw, protowire.BytesType)
	return protowire.AppendVarint(out, uint64(n))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}
