package store

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLogRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  logRecord
		want Event
	}{
		{
			"create",
			logRecord{typ: logCreate, createRev: 7, key: []byte("/a"), value: []byte("v")},
			Event{Type: EventCreate, Key: "/a", Value: []byte("v"), Revision: 7, CreateRevision: 7},
		},
		{
			"create empty value",
			logRecord{typ: logCreate, createRev: 7, key: []byte("/a")},
			Event{Type: EventCreate, Key: "/a", Value: []byte{}, Revision: 7, CreateRevision: 7},
		},
		{
			"update",
			logRecord{typ: logUpdate, createRev: 3, prevModRev: 5, key: []byte("/a"), value: []byte("new"), prev: []byte("old")},
			Event{Type: EventUpdate, Key: "/a", Value: []byte("new"), PrevValue: []byte("old"), Revision: 7, CreateRevision: 3},
		},
		{
			"delete",
			logRecord{typ: logDelete, createRev: 3, prevModRev: 5, key: []byte("/a"), prev: []byte("old")},
			Event{Type: EventDelete, Key: "/a", Value: []byte("old"), PrevValue: []byte("old"), Revision: 7, CreateRevision: 3},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := appendLogRecord(nil, &tc.rec)
			var got logRecord
			if err := decodeLogRecord(buf, &got); err != nil {
				t.Fatalf("decodeLogRecord(%q) = %v", buf, err)
			}
			if got.createRev != tc.rec.createRev || got.prevModRev != tc.rec.prevModRev {
				t.Errorf("decodeLogRecord(%q) revisions = %d, %d, want %d, %d",
					buf, got.createRev, got.prevModRev, tc.rec.createRev, tc.rec.prevModRev)
			}
			typ, key, err := decodeLogKey(buf)
			if err != nil || typ != tc.rec.typ || string(key) != string(tc.rec.key) {
				t.Errorf("decodeLogKey(%q) = %d, %q, %v, want %d, %q", buf, typ, key, err, tc.rec.typ, tc.rec.key)
			}
			ev, err := got.event(7)
			if err != nil {
				t.Fatalf("event() = %v", err)
			}
			if diff := cmp.Diff(tc.want, ev, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("event() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := appendLogRecord(nil, &logRecord{typ: logUpdate, createRev: 300, prevModRev: 301, key: []byte("/key"), value: []byte("value")})
	tests := []struct {
		name string
		rec  []byte
	}{
		{"empty", nil},
		{"type only", good[:1]},
		{"truncated revision", good[:2]},
		{"truncated key", good[:8]},
		{"key length past end", append(append([]byte{}, good[:5]...), 0x7f)},
		{"unknown type", append([]byte{9}, good[1:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r logRecord
			err := decodeLogRecord(tc.rec, &r)
			if err == nil {
				_, err = r.event(1)
			}
			if !errors.Is(err, errCorrupt) {
				t.Errorf("decode(%q) = %v, want %v", tc.rec, err, errCorrupt)
			}
		})
	}
	if _, _, _, err := decodeKeyRecord(make([]byte, keyHeaderLen-1)); !errors.Is(err, errCorrupt) {
		t.Errorf("decodeKeyRecord(short) = %v, want %v", err, errCorrupt)
	}
}
