package nodeclient

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/testnet"
)

// reportServer is the server side of Report and UpdateStatus as a sender
// sees it: it answers every pod with OK and counts streams and calls.
type reportServer struct {
	api.UnimplementedNodeServer
	noReport bool // answer Report with Unimplemented, as older servers do

	mu      sync.Mutex
	streams int   // Report streams opened
	calls   int   // UpdateStatus calls
	batches []int // pods per batch, both ways, in order
	// onBatch, when set, runs before the nth streamed batch (counted
	// over all streams, from 1) is answered; an error ends the stream
	// with it.
	onBatch  func(n int) error
	streamed int // batches received on streams
	// seqOffset is added to the seq of every streamed response.
	seqOffset uint64
}

func (s *reportServer) answer(req *api.StatusUpdate) *api.StatusUpdateResponse {
	s.mu.Lock()
	s.batches = append(s.batches, len(req.GetPods()))
	s.mu.Unlock()
	resp := &api.StatusUpdateResponse{}
	for range req.GetPods() {
		resp.Pods = append(resp.Pods, &api.Result{})
	}
	return resp
}

func (s *reportServer) UpdateStatus(_ context.Context, req *api.StatusUpdate) (*api.StatusUpdateResponse, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return s.answer(req), nil
}

func (s *reportServer) Report(stream api.Node_ReportServer) error {
	if s.noReport {
		return status.Error(codes.Unimplemented, "method Report not implemented")
	}
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		s.mu.Lock()
		s.streamed++
		n := s.streamed
		s.mu.Unlock()
		if s.onBatch != nil {
			if err := s.onBatch(n); err != nil {
				return err
			}
		}
		resp := s.answer(req)
		resp.Seq = req.GetSeq() + s.seqOffset
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *reportServer) counts() (streams, calls int, batches []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams, s.calls, append([]int(nil), s.batches...)
}

func startReportServer(t *testing.T, srv *reportServer) api.NodeClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	api.RegisterNodeServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewNodeClient(conn)
}

func batchOf(n int) *api.StatusUpdate {
	req := &api.StatusUpdate{}
	for range n {
		req.Pods = append(req.Pods, &api.PodStatus{Namespace: "default", Name: "p"})
	}
	return req
}

func senderCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sendOK(t *testing.T, s *StatusSender, ctx context.Context, n int) {
	t.Helper()
	resp, err := s.Send(ctx, batchOf(n))
	if err != nil {
		t.Fatalf("Send(%d pods) = %v", n, err)
	}
	if len(resp.GetPods()) != n {
		t.Fatalf("Send(%d pods) answered %d results", n, len(resp.GetPods()))
	}
}

func TestStatusSenderUsesOneStream(t *testing.T) {
	srv := &reportServer{}
	ctx := senderCtx(t)
	s := NewStatusSender(ctx, startReportServer(t, srv))
	defer s.Close()
	for n := 1; n <= 3; n++ {
		sendOK(t, s, ctx, n)
	}
	if streams, calls, batches := srv.counts(); streams != 1 || calls != 0 || len(batches) != 3 || batches[2] != 3 {
		t.Errorf("3 batches went as %d streams and %d calls, batches %v; want 1 stream, no call, [1 2 3]", streams, calls, batches)
	}
}

func TestStatusSenderFallsBackToUpdateStatus(t *testing.T) {
	srv := &reportServer{noReport: true}
	ctx := senderCtx(t)
	s := NewStatusSender(ctx, startReportServer(t, srv))
	defer s.Close()
	sendOK(t, s, ctx, 2)
	sendOK(t, s, ctx, 1)
	if streams, calls, batches := srv.counts(); streams != 0 || calls != 2 || len(batches) != 2 {
		t.Errorf("with a server without Report: %d streams, %d calls, batches %v; want 0 streams, 2 calls", streams, calls, batches)
	}
}

// A broken stream fails the batch on it; the next batch opens a new one.
func TestStatusSenderReopensABrokenStream(t *testing.T) {
	srv := &reportServer{onBatch: func(n int) error {
		if n == 2 {
			return status.Error(codes.Internal, "stream broke")
		}
		return nil
	}}
	ctx := senderCtx(t)
	s := NewStatusSender(ctx, startReportServer(t, srv))
	defer s.Close()
	sendOK(t, s, ctx, 1)
	if _, err := s.Send(ctx, batchOf(1)); status.Code(err) != codes.Internal {
		t.Fatalf("Send on a breaking stream = %v, want Internal", err)
	}
	sendOK(t, s, ctx, 1)
	if streams, _, _ := srv.counts(); streams != 2 {
		t.Errorf("streams opened = %d, want 2", streams)
	}
}

// A caller that stops waiting gets its context's error at once, and the
// late response does not answer its next batch: that goes on a new
// stream.
func TestStatusSenderGivesUpWithItsContext(t *testing.T) {
	release := make(chan struct{})
	srv := &reportServer{onBatch: func(n int) error {
		if n == 1 {
			<-release
		}
		return nil
	}}
	defer close(release)
	ctx := senderCtx(t)
	s := NewStatusSender(ctx, startReportServer(t, srv))
	defer s.Close()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Send(short, batchOf(5)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send past its deadline = %v, want DeadlineExceeded", err)
	}
	resp, err := s.Send(ctx, batchOf(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetPods()) != 2 {
		t.Errorf("the batch after a given-up one got %d results, want its own 2", len(resp.GetPods()))
	}
	if streams, _, _ := srv.counts(); streams != 2 {
		t.Errorf("streams opened = %d, want 2", streams)
	}
}

// A response that answers another batch is an error, not a result.
func TestStatusSenderChecksSeq(t *testing.T) {
	srv := &reportServer{seqOffset: 1}
	ctx := senderCtx(t)
	s := NewStatusSender(ctx, startReportServer(t, srv))
	defer s.Close()
	if _, err := s.Send(ctx, batchOf(1)); err == nil {
		t.Fatal("Send accepted a response with another batch's seq")
	}
}

// A caller that stops waiting while the stream is still being opened (the
// server accepted the connection but never answers) gets its context's
// error, not a wait for the connection.
func TestStatusSenderGivesUpWhileOpening(t *testing.T) {
	ln := testnet.SilentListener(t)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	long, cancelLong := context.WithCancel(context.Background())
	defer cancelLong()
	s := NewStatusSender(long, api.NewNodeClient(conn))
	defer s.Close()
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(short, batchOf(1))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send kept waiting for the connection after its context ended")
	}
}
