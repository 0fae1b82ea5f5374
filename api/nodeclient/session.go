package nodeclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minik-dev/minik/api"
)

// ErrGap ends a session whose messages are not chained: the node asks for
// a complete set at once, without backoff.
var ErrGap = errors.New("nodeclient: session revision gap")

// Follower checks that a session's messages are chained (see
// api.SessionMessage) and keeps the revision to resume from. Its zero
// value asks for a complete set. It is not safe for concurrent use.
type Follower struct {
	rev int64
}

// Revision is the revision of the last message applied, for
// api.SessionRequest.last_revision; 0 asks for a complete set.
func (f *Follower) Revision() int64 { return f.rev }

// Check tells whether m may be applied on top of what the node holds:
// complete is true for a complete set, which replaces it. A message that
// does not follow the last one is ErrGap, after which Revision is 0. The
// caller applies m and then calls Applied.
func (f *Follower) Check(m *api.SessionMessage) (complete bool, err error) {
	switch m.GetType() {
	case api.SessionMessage_COMPLETE:
		return true, nil
	case api.SessionMessage_INCREMENTAL:
		if m.GetPrevRevision() != f.rev {
			err := fmt.Errorf("message follows revision %d, the node holds %d: %w", m.GetPrevRevision(), f.rev, ErrGap)
			f.rev = 0
			return false, err
		}
		return false, nil
	default:
		return false, fmt.Errorf("session message of unknown type %v", m.GetType())
	}
}

// Applied records that m has been applied.
func (f *Follower) Applied(m *api.SessionMessage) { f.rev = m.GetRevision() }

// Receive hands the stream's messages to msgs until ctx ends or Recv
// fails, and then reports the error on errc, which must have room for it.
func Receive(ctx context.Context, stream api.Node_SessionClient, msgs chan<- *api.SessionMessage, errc chan<- error) {
	for {
		m, err := stream.Recv()
		if err != nil {
			errc <- err
			return
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return
		}
	}
}

// OpenSession opens client's Session stream for req. Opening waits for a
// connection and for flow control, neither of which may hold a
// reconnecting node forever: it gives up after timeout with an error
// wrapping context.DeadlineExceeded. The stream lives as long as ctx.
func OpenSession(ctx context.Context, client api.NodeClient, req *api.SessionRequest, timeout time.Duration) (api.Node_SessionClient, error) {
	sctx, cancel := context.WithCancel(ctx)
	t := time.AfterFunc(timeout, cancel)
	stream, err := client.Session(sctx, req)
	if !t.Stop() {
		cancel()
		return nil, fmt.Errorf("opening the session: no answer in %v: %w", timeout, context.DeadlineExceeded)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return stream, nil // sctx ends with ctx, and the stream with it

}
