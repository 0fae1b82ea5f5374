package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bucket names and meta keys; store/doc.go shows the tree.
var (
	bucketMeta = []byte("meta")
	bucketKeys = []byte("keys")
	bucketLog  = []byte("log")

	metaSchema    = []byte("schema")
	metaRevision  = []byte("revision")
	metaCompacted = []byte("compacted")
)

// schemaVersion is the layout written by this code. Bump it, and teach
// migrate the step, whenever the bucket layout or a record format changes.
const schemaVersion = 1

// keyHeaderLen is the fixed part of a record in the keys bucket:
// createRev (8 bytes) then modRev (8 bytes), both big-endian.
const keyHeaderLen = 16

// Log record types, the first byte of every record in the log bucket.
const (
	logCreate byte = 1
	logUpdate byte = 2
	logDelete byte = 3
)

var errCorrupt = errors.New("store: corrupt record")

// buckets are the three buckets of one transaction.
type buckets struct {
	meta, keys, log *bolt.Bucket
}

func openBuckets(tx *bolt.Tx) (buckets, error) {
	b := buckets{
		meta: tx.Bucket(bucketMeta),
		keys: tx.Bucket(bucketKeys),
		log:  tx.Bucket(bucketLog),
	}
	if b.meta == nil || b.keys == nil || b.log == nil {
		return b, fmt.Errorf("missing bucket: %w", errCorrupt)
	}
	return b, nil
}

// initSchema creates the buckets of a new database and checks the schema
// version of an existing one.
func initSchema(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketKeys, bucketLog} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %q: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(metaSchema)
	if v == nil {
		return meta.Put(metaSchema, beUint64(schemaVersion))
	}
	if len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
		return fmt.Errorf("schema version %x, want %d: %w", v, schemaVersion, errCorrupt)
	}
	return nil
}

// readMeta returns the current and the compacted revision stored in meta.
func readMeta(meta *bolt.Bucket) (rev, compacted int64) {
	return getInt64(meta, metaRevision), getInt64(meta, metaCompacted)
}

func getInt64(b *bolt.Bucket, key []byte) int64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func beUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

// revKey is the log bucket key of a revision: big-endian, so a cursor
// walks the log in revision order.
func revKey(buf []byte, rev int64) []byte {
	return binary.BigEndian.AppendUint64(buf, uint64(rev))
}

func parseRevKey(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k))
}

// decodeKeyRecord splits a keys-bucket record. The value aliases rec.
func decodeKeyRecord(rec []byte) (createRev, modRev int64, value []byte, err error) {
	if len(rec) < keyHeaderLen {
		return 0, 0, nil, errCorrupt
	}
	createRev = int64(binary.BigEndian.Uint64(rec[0:8]))
	modRev = int64(binary.BigEndian.Uint64(rec[8:16]))
	return createRev, modRev, rec[keyHeaderLen:], nil
}

// setKeyHeader writes the revisions into the first keyHeaderLen bytes of rec.
func setKeyHeader(rec []byte, createRev, modRev int64) {
	binary.BigEndian.PutUint64(rec[0:8], uint64(createRev))
	binary.BigEndian.PutUint64(rec[8:16], uint64(modRev))
}

// logRecord is one decoded entry of the log bucket. Its slices alias the
// record they were decoded from.
//
// Encoding: type byte, uvarint createRev, uvarint prevModRev (0 for a
// create), uvarint key length, key, uvarint value length, value (empty for
// a delete), then the previous value up to the end of the record (absent
// for a create).
type logRecord struct {
	typ        byte
	createRev  int64
	prevModRev int64
	key        []byte
	value      []byte
	prev       []byte
}

// appendLogRecord encodes r at the end of buf.
func appendLogRecord(buf []byte, r *logRecord) []byte {
	buf = append(buf, r.typ)
	buf = binary.AppendUvarint(buf, uint64(r.createRev))
	buf = binary.AppendUvarint(buf, uint64(r.prevModRev))
	buf = binary.AppendUvarint(buf, uint64(len(r.key)))
	buf = append(buf, r.key...)
	buf = binary.AppendUvarint(buf, uint64(len(r.value)))
	buf = append(buf, r.value...)
	return append(buf, r.prev...)
}

// decodeLogKey returns the type and key of a log record without decoding
// the values, so a scan can skip records outside a prefix cheaply.
func decodeLogKey(rec []byte) (typ byte, key []byte, err error) {
	if len(rec) < 1 {
		return 0, nil, errCorrupt
	}
	rest := rec[1:]
	for range 2 { // createRev, prevModRev
		_, n := binary.Uvarint(rest)
		if n <= 0 {
			return 0, nil, errCorrupt
		}
		rest = rest[n:]
	}
	key, _, err = lengthPrefixed(rest)
	return rec[0], key, err
}

func decodeLogRecord(rec []byte, r *logRecord) error {
	if len(rec) < 1 {
		return errCorrupt
	}
	r.typ = rec[0]
	rest := rec[1:]
	v, n := binary.Uvarint(rest)
	if n <= 0 {
		return errCorrupt
	}
	r.createRev, rest = int64(v), rest[n:]
	if v, n = binary.Uvarint(rest); n <= 0 {
		return errCorrupt
	}
	r.prevModRev, rest = int64(v), rest[n:]
	var err error
	if r.key, rest, err = lengthPrefixed(rest); err != nil {
		return err
	}
	if r.value, rest, err = lengthPrefixed(rest); err != nil {
		return err
	}
	r.prev = nil
	if r.typ != logCreate {
		r.prev = rest
	}
	return nil
}

func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return nil, nil, errCorrupt
	}
	b = b[n:]
	return b[:l:l], b[l:], nil
}

// event turns a decoded record into an Event, copying the slices out of
// the database's memory. A delete's Value is the value before deletion.
func (r *logRecord) event(rev int64) (Event, error) {
	ev := Event{
		Key:            string(r.key),
		Revision:       rev,
		CreateRevision: r.createRev,
	}
	switch r.typ {
	case logCreate:
		ev.Type = EventCreate
		ev.Value = clone(r.value)
	case logUpdate:
		ev.Type = EventUpdate
		ev.Value = clone(r.value)
		ev.PrevValue = clone(r.prev)
	case logDelete:
		ev.Type = EventDelete
		ev.PrevValue = clone(r.prev)
		ev.Value = ev.PrevValue
	default:
		return Event{}, fmt.Errorf("log record type %d at revision %d: %w", r.typ, rev, errCorrupt)
	}
	return ev, nil
}

// clone copies b into a new non-nil slice.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
