package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// eventClient is the server side of ReportEvents, as the reporter sees it.
type eventClient struct {
	api.NodeClient
	mu      sync.Mutex
	batches [][]*api.PodEvent
	err     error
}

func (c *eventClient) ReportEvents(_ context.Context, req *api.EventReport, _ ...grpc.CallOption) (*api.EventReportResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	c.batches = append(c.batches, req.GetEvents())
	resp := &api.EventReportResponse{}
	for range req.GetEvents() {
		resp.Events = append(resp.Events, &api.Result{})
	}
	return resp, nil
}

func podEvent(i int, at time.Time) pods.Event {
	return pods.Event{FieldPath: "spec.containers{app}", Type: "Normal", Reason: "Started", Message: fmt.Sprintf("event %d", i), Time: at}
}

var evPod = types.NamespacedName{Namespace: "default", Name: "web"}

func TestReporterAggregatesEvents(t *testing.T) {
	c := &eventClient{}
	r := newReporter(c, nil, slog.New(slog.DiscardHandler))
	t0 := time.UnixMilli(1_800_000_000_000)
	for i := range 5 {
		r.PodEvent(evPod, "uid-1", podEvent(0, t0.Add(time.Duration(i)*time.Second)))
	}
	r.PodEvent(evPod, "uid-1", podEvent(1, t0))
	r.PodEvent(evPod, "uid-2", podEvent(0, t0)) // another pod with that name
	if err := r.flushEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.batches) != 1 || len(c.batches[0]) != 3 {
		t.Fatalf("batches = %v, want one of 3 events", c.batches)
	}
	first := c.batches[0][0]
	if first.Message != "event 0" || first.Uid != "uid-1" || first.Count != 5 ||
		first.FirstSeenMs != t0.UnixMilli() || first.LastSeenMs != t0.Add(4*time.Second).UnixMilli() {
		t.Errorf("first event = %v, want event 0 of uid-1 seen 5 times over 4s", first)
	}
	if c.batches[0][1].Count != 1 || c.batches[0][2].Uid != "uid-2" {
		t.Errorf("events = %v", c.batches[0])
	}
}

// A flood fills the queue up to its bound; the rest is dropped, and what
// is queued goes out oldest first in bounded batches.
func TestReporterBoundsEvents(t *testing.T) {
	c := &eventClient{}
	r := newReporter(c, nil, slog.New(slog.DiscardHandler))
	for i := range maxQueuedEvents + 100 {
		r.PodEvent(evPod, "uid-1", podEvent(i, time.Now()))
	}
	if len(r.events) != maxQueuedEvents || r.dropped != 100 {
		t.Fatalf("queued %d dropped %d, want %d and 100", len(r.events), r.dropped, maxQueuedEvents)
	}
	if err := r.flushEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, b := range c.batches {
		if len(b) > maxEventBatch {
			t.Errorf("batch of %d events, want at most %d", len(b), maxEventBatch)
		}
		for _, ev := range b {
			if want := fmt.Sprintf("event %d", sent); ev.Message != want {
				t.Fatalf("event %d sent is %q, want %q", sent, ev.Message, want)
			}
			sent++
		}
	}
	if sent != maxQueuedEvents || len(r.events) != 0 || len(r.eventOrder) != 0 {
		t.Errorf("sent %d, left %d/%d; want %d sent and none left", sent, len(r.events), len(r.eventOrder), maxQueuedEvents)
	}
}

// A failed call keeps the batch, merged with repeats recorded meanwhile;
// a server without ReportEvents turns events off.
func TestReporterEventsRetryAndUnimplemented(t *testing.T) {
	c := &eventClient{err: status.Error(codes.Unavailable, "connection lost")}
	r := newReporter(c, nil, slog.New(slog.DiscardHandler))
	r.PodEvent(evPod, "uid-1", podEvent(0, time.Now()))
	if err := r.flushEvents(context.Background()); status.Code(errors.Unwrap(err)) != codes.Unavailable {
		t.Fatalf("flushEvents = %v, want the Unavailable error", err)
	}
	r.PodEvent(evPod, "uid-1", podEvent(0, time.Now()))
	c.err = nil
	if err := r.flushEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.batches) != 1 || len(c.batches[0]) != 1 || c.batches[0][0].Count != 2 {
		t.Fatalf("batches = %v, want the event once with count 2", c.batches)
	}

	c.err = status.Error(codes.Unimplemented, "unknown method ReportEvents")
	r.PodEvent(evPod, "uid-1", podEvent(1, time.Now()))
	if err := r.flushEvents(context.Background()); err != nil {
		t.Fatalf("flushEvents on an old server = %v, want nil", err)
	}
	r.PodEvent(evPod, "uid-1", podEvent(2, time.Now()))
	if len(r.events) != 0 {
		t.Errorf("%d events queued for a server that takes none", len(r.events))
	}

	// The next connection may be to a server that takes events (the
	// agent fails over between servers of different versions).
	c.err = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.run(ctx)
	r.PodEvent(evPod, "uid-1", podEvent(3, time.Now()))
	if err := r.flushEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(c.batches); n != 2 || len(c.batches[1]) != 1 || c.batches[1][0].Message != "event 3" {
		t.Errorf("batches after reconnecting = %v, want event 3 sent", c.batches)
	}
}
