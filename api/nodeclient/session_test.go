package nodeclient

import (
	"errors"
	"testing"
	"time"

	"github.com/minik-dev/minik/api"
)

func TestFollower(t *testing.T) {
	complete := func(rev int64) *api.SessionMessage {
		return &api.SessionMessage{Type: api.SessionMessage_COMPLETE, Revision: rev}
	}
	inc := func(prev, rev int64) *api.SessionMessage {
		return &api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: prev, Revision: rev}
	}
	var f Follower
	steps := []struct {
		name         string
		m            *api.SessionMessage
		wantComplete bool
		wantErr      error
		wantRev      int64 // after the step
	}{
		{"complete set", complete(10), true, nil, 10},
		{"chained increment", inc(10, 14), false, nil, 14},
		{"increment after a gap", inc(15, 20), false, ErrGap, 0},
		{"complete set again", complete(21), true, nil, 21},
		{"chained again", inc(21, 22), false, nil, 22},
	}
	for _, s := range steps {
		complete, err := f.Check(s.m)
		if complete != s.wantComplete || !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: Check() = %v, %v; want %v, %v", s.name, complete, err, s.wantComplete, s.wantErr)
		}
		if err == nil {
			f.Applied(s.m)
		}
		if f.Revision() != s.wantRev {
			t.Errorf("%s: Revision() = %d, want %d", s.name, f.Revision(), s.wantRev)
		}
	}
	if _, err := f.Check(&api.SessionMessage{}); err == nil || errors.Is(err, ErrGap) {
		t.Errorf("Check(message of no type) = %v, want an error other than ErrGap", err)
	}
}

func TestBackoff(t *testing.T) {
	b := NewBackoff()
	interval := MinBackoff
	for range 10 {
		d := b.Next()
		if d < interval/2 || d > interval {
			t.Errorf("Next() = %v, want between %v and %v", d, interval/2, interval)
		}
		interval = min(2*interval, MaxBackoff)
	}
	b.Connected(time.Now().Add(-StableAfter - time.Second))
	if d := b.Next(); d > MinBackoff {
		t.Errorf("Next() after a stable connection = %v, want at most %v", d, MinBackoff)
	}
}
