package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/reference"
)

// EventRecorder records core/v1 Events about objects. Eventf does not
// block and is safe for concurrent use.
type EventRecorder interface {
	Eventf(obj runtime.Object, eventType, reason, format string, args ...any)
}

// DiscardEvents is an EventRecorder that records nothing.
var DiscardEvents EventRecorder = discardEvents{}

type discardEvents struct{}

func (discardEvents) Eventf(runtime.Object, string, string, string, ...any) {}

// ComponentControllerManager is the source component of the controllers'
// events.
const ComponentControllerManager = "minik-controller-manager"

// eventQueueSize is how many events wait for Run before new ones are
// dropped.
const eventQueueSize = 1000

// aggregateTTL is how long a written event is remembered for aggregation.
const aggregateTTL = 10 * time.Minute

// Recorder is an EventRecorder that writes Events through the API. An
// event with the same involved object, type, reason and message as one it
// wrote recently updates that Event (count+1, lastTimestamp) instead of
// creating another. Events are written by Run, in the order recorded;
// until Run starts they wait in a bounded queue, and when the queue is
// full new events are dropped (and logged).
type Recorder struct {
	client    kubernetes.Interface
	component string
	lg        *slog.Logger
	now       func() time.Time
	queue     chan *corev1.Event

	// seen is owned by Run: aggregation key → last written Event.
	seen map[string]*seenEvent
}

type seenEvent struct {
	ev      *corev1.Event
	written time.Time
}

var _ EventRecorder = (*Recorder)(nil)

// NewRecorder returns a Recorder whose events name component as their
// source. lg may be nil.
func NewRecorder(client kubernetes.Interface, component string, lg *slog.Logger) *Recorder {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Recorder{
		client:    client,
		component: component,
		lg:        lg.With("component", "events", "source", component),
		now:       time.Now,
		queue:     make(chan *corev1.Event, eventQueueSize),
		seen:      map[string]*seenEvent{},
	}
}

// Eventf records an event about obj; eventType is corev1.EventTypeNormal
// or corev1.EventTypeWarning. obj must be an object of a registered kind
// (any core/v1 type).
func (r *Recorder) Eventf(obj runtime.Object, eventType, reason, format string, args ...any) {
	ref, err := reference.GetReference(scheme.Scheme, obj)
	if err != nil {
		r.lg.Warn("event about an object without a reference", "reason", reason, "err", err)
		return
	}
	now := metav1.NewTime(r.now())
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()),
			Namespace: ns,
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
	case r.queue <- ev:
	default:
		r.lg.Warn("event queue full, event dropped", "reason", reason, "object", ref.Name)
	}
}

// Run writes recorded events until ctx ends.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(aggregateTTL)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-r.queue:
			if err := r.write(ctx, ev); err != nil && ctx.Err() == nil {
				r.lg.Warn("writing event", "reason", ev.Reason, "object", ev.InvolvedObject.Name, "err", err)
			}
		case <-t.C:
			r.expire()
		}
	}
}

// write creates ev, or updates the Event it repeats.
func (r *Recorder) write(ctx context.Context, ev *corev1.Event) error {
	key := aggregationKey(ev)
	if s, ok := r.seen[key]; ok {
		updated, err := r.bump(ctx, s.ev, ev.LastTimestamp)
		if err == nil {
			r.seen[key] = &seenEvent{ev: updated, written: r.now()}
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	created, err := r.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	r.seen[key] = &seenEvent{ev: created, written: r.now()}
	return nil
}

// bump counts one more occurrence of prev, seen at last.
func (r *Recorder) bump(ctx context.Context, prev *corev1.Event, last metav1.Time) (*corev1.Event, error) {
	ev := prev.DeepCopy()
	ev.Count++
	ev.LastTimestamp = last
	events := r.client.CoreV1().Events(ev.Namespace)
	out, err := events.Update(ctx, ev, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		return out, err
	}
	cur, err := events.Get(ctx, ev.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cur.Count++
	cur.LastTimestamp = last
	return events.Update(ctx, cur, metav1.UpdateOptions{})
}

func (r *Recorder) expire() {
	cutoff := r.now().Add(-aggregateTTL)
	for k, s := range r.seen {
		if s.written.Before(cutoff) {
			delete(r.seen, k)
		}
	}
}

func aggregationKey(ev *corev1.Event) string {
	o := ev.InvolvedObject
	return fmt.Sprintf("%s/%s/%s/%s/%s\x00%s\x00%s\x00%s", o.Kind, o.Namespace, o.Name, o.UID, o.FieldPath, ev.Type, ev.Reason, ev.Message)
}

// recorderOr returns r, or DiscardEvents when r is nil.
func recorderOr(r EventRecorder) EventRecorder {
	if r == nil {
		return DiscardEvents
	}
	return r
}
