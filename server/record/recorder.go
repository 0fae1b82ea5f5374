// Package record writes core/v1 Events about objects through the API,
// aggregating repeats as client-go's recorder does: the controllers, the
// scheduler and the node service (for the nodes' pods) each record with
// one.
package record

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync"
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

// Discard is an EventRecorder that records nothing.
var Discard EventRecorder = discardEvents{}

type discardEvents struct{}

func (discardEvents) Eventf(runtime.Object, string, string, string, ...any) {}

// DefaultQueueSize is how many events wait to be written, across all
// writers, before new ones are dropped.
const DefaultQueueSize = 1000

// aggregateTTL is how long a written event is remembered for aggregation.
const aggregateTTL = 10 * time.Minute

// Options tune a Recorder; zero values pick the defaults.
type Options struct {
	// Writers is the number of goroutines writing events (default 1).
	// Repeats of one event always go to the same writer, so aggregation
	// holds with any number.
	Writers int
	// QueueSize bounds the events waiting to be written, shared evenly
	// among the writers (default DefaultQueueSize).
	QueueSize int
}

// Recorder is an EventRecorder that writes Events through the API. An
// event with the same involved object, type, reason and message as one it
// wrote recently updates that Event (count and lastTimestamp) instead of
// creating another. Events are written by Run's writers; each writer
// writes its events in the order recorded. Until Run starts they wait in
// bounded queues, and when a queue is full new events are dropped (and
// logged).
type Recorder struct {
	client    kubernetes.Interface
	component string
	lg        *slog.Logger
	now       func() time.Time
	writers   []*eventWriter
}

// eventWriter writes the events whose aggregation key hashes to it. Its
// goroutine owns seen.
type eventWriter struct {
	queue chan *corev1.Event
	// seen: aggregation key → last written Event.
	seen map[string]*seenEvent
}

type seenEvent struct {
	ev      *corev1.Event
	written time.Time
}

var _ EventRecorder = (*Recorder)(nil)

// New returns a Recorder whose events name component as their source. lg
// may be nil.
func New(client kubernetes.Interface, component string, lg *slog.Logger, opts Options) *Recorder {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.Writers <= 0 {
		opts.Writers = 1
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	r := &Recorder{
		client:    client,
		component: component,
		lg:        lg.With("component", "events", "source", component),
		now:       time.Now,
	}
	per := max(opts.QueueSize/opts.Writers, 1)
	for range opts.Writers {
		r.writers = append(r.writers, &eventWriter{queue: make(chan *corev1.Event, per), seen: map[string]*seenEvent{}})
	}
	return r
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
	r.Record(&corev1.Event{
		InvolvedObject: *ref,
		Reason:         reason,
		Message:        fmt.Sprintf(format, args...),
		Type:           eventType,
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	})
}

// Record queues ev, an event its caller has built: involvedObject, type,
// reason and message must be set. The recorder names it and fills what is
// unset: namespace (the involved object's, else default), source component
// (the recorder's), timestamps (now) and count (1). Record takes ownership
// of ev, never blocks and is safe for concurrent use.
func (r *Recorder) Record(ev *corev1.Event) {
	if ev.Namespace == "" {
		ev.Namespace = ev.InvolvedObject.Namespace
	}
	if ev.Namespace == "" {
		ev.Namespace = metav1.NamespaceDefault
	}
	if ev.Source.Component == "" {
		ev.Source.Component = r.component
	}
	if ev.ReportingController == "" {
		ev.ReportingController = ev.Source.Component
	}
	if ev.ReportingInstance == "" {
		ev.ReportingInstance = ev.Source.Host
	}
	if ev.FirstTimestamp.IsZero() {
		ev.FirstTimestamp = metav1.NewTime(r.now())
	}
	if ev.LastTimestamp.IsZero() {
		ev.LastTimestamp = ev.FirstTimestamp
	}
	if ev.Count <= 0 {
		ev.Count = 1
	}
	if ev.Name == "" {
		// Named by when it is recorded, not first seen: a node reports
		// several events first seen in the same millisecond.
		ev.Name = fmt.Sprintf("%s.%x", ev.InvolvedObject.Name, r.now().UnixNano())
	}
	w := r.writers[writerOf(aggregationKey(ev), len(r.writers))]
	select {
	case w.queue <- ev:
	default:
		r.lg.Warn("event queue full, event dropped", "reason", ev.Reason, "object", ev.InvolvedObject.Name)
	}
}

// writerOf picks the writer of an aggregation key.
func writerOf(key string, n int) int {
	if n == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Run writes recorded events until ctx ends, and returns after its
// writers have stopped.
func (r *Recorder) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, w := range r.writers {
		wg.Go(func() { r.runWriter(ctx, w) })
	}
	wg.Wait()
	return nil
}

func (r *Recorder) runWriter(ctx context.Context, w *eventWriter) {
	t := time.NewTicker(aggregateTTL)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.queue:
			if err := r.write(ctx, w, ev); err != nil && ctx.Err() == nil {
				r.lg.Warn("writing event", "reason", ev.Reason, "object", ev.InvolvedObject.Name, "err", err)
			}
		case <-t.C:
			r.expire(w)
		}
	}
}

// write creates ev, or updates the Event it repeats.
func (r *Recorder) write(ctx context.Context, w *eventWriter, ev *corev1.Event) error {
	key := aggregationKey(ev)
	if s, ok := w.seen[key]; ok {
		updated, err := r.bump(ctx, s.ev, ev.Count, ev.LastTimestamp)
		if err == nil {
			w.seen[key] = &seenEvent{ev: updated, written: r.now()}
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	created, err := r.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Two events about one object in the same nanosecond.
		ev.Name = fmt.Sprintf("%s.%x", ev.InvolvedObject.Name, r.now().UnixNano())
		created, err = r.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	w.seen[key] = &seenEvent{ev: created, written: r.now()}
	return nil
}

// bump counts n more occurrences of prev, the last seen at last.
func (r *Recorder) bump(ctx context.Context, prev *corev1.Event, n int32, last metav1.Time) (*corev1.Event, error) {
	ev := prev.DeepCopy()
	addOccurrences(ev, n, last)
	events := r.client.CoreV1().Events(ev.Namespace)
	out, err := events.Update(ctx, ev, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		return out, err
	}
	cur, err := events.Get(ctx, ev.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	addOccurrences(cur, n, last)
	return events.Update(ctx, cur, metav1.UpdateOptions{})
}

// addOccurrences counts n more occurrences of ev (saturating: counts
// come from nodes, and int32 would wrap negative), the last at last.
func addOccurrences(ev *corev1.Event, n int32, last metav1.Time) {
	ev.Count = int32(min(int64(ev.Count)+int64(n), math.MaxInt32))
	if last.After(ev.LastTimestamp.Time) {
		ev.LastTimestamp = last
	}
}

func (r *Recorder) expire(w *eventWriter) {
	cutoff := r.now().Add(-aggregateTTL)
	for k, s := range w.seen {
		if s.written.Before(cutoff) {
			delete(w.seen, k)
		}
	}
}

func aggregationKey(ev *corev1.Event) string {
	o := ev.InvolvedObject
	return fmt.Sprintf("%s/%s/%s/%s/%s\x00%s\x00%s\x00%s\x00%s\x00%s", o.Kind, o.Namespace, o.Name, o.UID, o.FieldPath,
		ev.Source.Component, ev.Source.Host, ev.Type, ev.Reason, ev.Message)
}
