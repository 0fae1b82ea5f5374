package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/reference"
)

// eventBuffer bounds the events waiting to be written; past it events are
// dropped rather than slowing scheduling down. Fewer writers than binders
// let events trail a burst of bindings instead of competing with them.
const (
	eventBuffer  = 16384
	eventWriters = 8
)

// apiRecorder writes core/v1 Events through a client, asynchronously.
type apiRecorder struct {
	client    kubernetes.Interface
	component string
	lg        *slog.Logger
	ch        chan *corev1.Event
}

var _ EventRecorder = (*apiRecorder)(nil)

func newAPIRecorder(client kubernetes.Interface, component string, lg *slog.Logger) *apiRecorder {
	return &apiRecorder{client: client, component: component, lg: lg, ch: make(chan *corev1.Event, eventBuffer)}
}

// Eventf queues an event about obj; it never blocks. It is safe for
// concurrent use.
func (r *apiRecorder) Eventf(obj runtime.Object, eventType, reason, format string, args ...any) {
	ref, err := reference.GetReference(scheme.Scheme, obj)
	if err != nil {
		r.lg.Debug("event dropped", "reason", reason, "err", err)
		return
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()),
			Namespace: ref.Namespace,
		},
		InvolvedObject:      *ref,
		Reason:              reason,
		Message:             fmt.Sprintf(format, args...),
		Type:                eventType,
		Source:              corev1.EventSource{Component: r.component},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: r.component,
	}
	select {
	case r.ch <- ev:
	default:
		r.lg.Debug("event dropped", "reason", reason, "object", ref.Name)
	}
}

// run writes queued events until ctx ends.
func (r *apiRecorder) run(ctx context.Context) error {
	done := make(chan struct{})
	for range eventWriters {
		go func() {
			defer func() { done <- struct{}{} }()
			r.write(ctx)
		}()
	}
	for range eventWriters {
		<-done
	}
	return nil
}

func (r *apiRecorder) write(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.ch:
			if _, err := r.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
				r.lg.Debug("event not written", "reason", ev.Reason, "err", err)
			}
		}
	}
}
