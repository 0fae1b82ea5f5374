package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Conflicts requeue a key without growing its backoff: 30 conflicts in a
// row would wait 10 ms × 2^30 under the failure backoff, and take moments
// here. Other errors do grow it.
func TestLoopConflictsDoNotBackOff(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "replicasets"}, "web", errors.New("changed"))
	var syncs atomic.Int32
	done := make(chan struct{})
	l := newLoop("test", slog.New(slog.DiscardHandler), func(ctx context.Context, key string) error {
		switch n := syncs.Add(1); {
		case n <= 30:
			return fmt.Errorf("status: %w", conflict)
		case n == 31:
			close(done)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.run(ctx, 1)
	l.add("default/web")
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%d syncs after a minute, want 31", syncs.Load())
	}
	if n := l.queue.NumRequeues("default/web"); n != 0 {
		t.Errorf("requeues after conflicts = %d, want 0", n)
	}

	// Any other error counts as a failure.
	failing := newLoop("test", slog.New(slog.DiscardHandler), func(context.Context, string) error { return errors.New("boom") })
	go failing.run(ctx, 1)
	failing.add("default/web")
	for deadline := time.Now().Add(time.Minute); failing.queue.NumRequeues("default/web") < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a failing sync was not requeued with backoff")
		}
	}
}
