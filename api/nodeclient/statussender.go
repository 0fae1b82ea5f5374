package nodeclient

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
)

// StatusSender sends a node's status batches over one Report stream,
// opened when first needed and again after it breaks, so that a batch
// costs a message rather than a call. With a server that has no Report it
// calls UpdateStatus instead, for as long as the sender lives.
//
// Its methods are not safe for concurrent use: a node sends one batch at
// a time.
type StatusSender struct {
	ctx    context.Context // the stream's lifetime
	client api.NodeClient

	stream api.Node_ReportClient // nil until opened, and after a failure
	cancel context.CancelFunc    // ends the stream, set while it opens or is open
	seq    uint64                // of the last batch sent
	unary  bool                  // the server has no Report
}

// NewStatusSender returns a sender whose streams last at most as long as
// ctx. Close ends the stream it holds.
func NewStatusSender(ctx context.Context, client api.NodeClient) *StatusSender {
	return &StatusSender{ctx: ctx, client: client}
}

// Send applies a batch and returns the server's response. It sets
// req.Seq, so a request must not be sent by two senders at once. An error
// means the batch may or may not have been applied; sending it again is
// harmless. Send returns when ctx ends, closing the stream.
func (s *StatusSender) Send(ctx context.Context, req *api.StatusUpdate) (*api.StatusUpdateResponse, error) {
	if s.unary {
		return s.client.UpdateStatus(ctx, req)
	}
	resp, err := s.exchange(ctx, req)
	if status.Code(err) == codes.Unimplemented {
		s.unary = true
		return s.client.UpdateStatus(ctx, req)
	}
	return resp, err
}

// exchange sends req on the stream, opening one if needed, and waits for
// its response. Any error closes the stream; the next batch opens a new
// one.
func (s *StatusSender) exchange(ctx context.Context, req *api.StatusUpdate) (resp *api.StatusUpdateResponse, err error) {
	var sctx context.Context
	opening := s.stream == nil
	if opening {
		sctx, s.cancel = context.WithCancel(s.ctx)
	}
	// A caller that stops waiting takes the stream down with it, even
	// while it opens: the response it gave up on would otherwise answer
	// the next batch.
	stop := context.AfterFunc(ctx, s.cancel)
	defer func() {
		if !stop() || err != nil {
			s.Close()
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}()
	if opening {
		if s.stream, err = s.client.Report(sctx); err != nil {
			return nil, err
		}
	}
	s.seq++
	req.Seq = s.seq
	if err := s.stream.Send(req); err != nil {
		// A stream that ended tells why through Recv.
		if errors.Is(err, io.EOF) {
			if _, rerr := s.stream.Recv(); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	resp, err = s.stream.Recv()
	if err != nil {
		return nil, err
	}
	if resp.GetSeq() != req.Seq {
		return nil, fmt.Errorf("status report %d answered as %d", req.Seq, resp.GetSeq())
	}
	return resp, nil
}

// Close ends the stream, if one is open.
func (s *StatusSender) Close() {
	if s.stream != nil {
		s.stream.CloseSend()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.stream, s.cancel = nil, nil
}
