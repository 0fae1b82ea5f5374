package controllers

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultEventTTL is how long an Event is kept after it last changed, as
// the Kubernetes API server's --event-ttl default.
const DefaultEventTTL = time.Hour

// eventTTLPage is how many Events one list call of a sweep reads.
const eventTTLPage = 500

// eventClockSkew is how far ahead of the sweeper's clock a time an Event
// records may be and still count: the clocks of the servers and nodes that
// write Events differ a little, but a time further ahead is not believed,
// or an Event stamped years ahead would never expire.
const eventClockSkew = time.Minute

// EventTTLOptions tunes an EventTTL.
type EventTTLOptions struct {
	// TTL is how long an Event lives after it last changed (default
	// DefaultEventTTL).
	TTL time.Duration
	// Period is the time between sweeps (default TTL/12).
	Period time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// EventTTL deletes Events that have not changed for their TTL, which
// Kubernetes does with etcd leases: without it the Events of crash loops
// and probes would pile up forever.
type EventTTL struct {
	client kubernetes.Interface
	opts   EventTTLOptions
	lg     *slog.Logger
}

// NewEventTTL returns an EventTTL. lg may be nil.
func NewEventTTL(client kubernetes.Interface, lg *slog.Logger, opts EventTTLOptions) *EventTTL {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultEventTTL
	}
	if opts.Period <= 0 {
		opts.Period = opts.TTL / 12
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &EventTTL{client: client, opts: opts, lg: lg.With("component", "event-ttl")}
}

// Run sweeps every Period until ctx ends; workers is unused (one sweep
// at a time).
func (c *EventTTL) Run(ctx context.Context, _ int) error {
	t := time.NewTicker(c.opts.Period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			n, err := c.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				c.lg.Warn("sweeping expired events", "deleted", n, "err", err)
			} else if n > 0 {
				c.lg.Debug("expired events deleted", "deleted", n)
			}
		}
	}
}

// Sweep deletes every Event unchanged for longer than the TTL and returns
// how many it deleted. An Event that changes while it is swept is kept
// (the delete's resourceVersion precondition fails).
func (c *EventTTL) Sweep(ctx context.Context) (int, error) {
	now := c.opts.Now()
	cutoff := now.Add(-c.opts.TTL)
	deleted := 0
	opts := metav1.ListOptions{Limit: eventTTLPage}
	for {
		list, err := c.client.CoreV1().Events(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return deleted, err
		}
		for i := range list.Items {
			ev := &list.Items[i]
			if !lastChanged(ev, now).Before(cutoff) {
				continue
			}
			err := c.client.CoreV1().Events(ev.Namespace).Delete(ctx, ev.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{ResourceVersion: &ev.ResourceVersion},
			})
			switch {
			case err == nil:
				deleted++
			case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			default:
				return deleted, err
			}
		}
		if list.Continue == "" {
			return deleted, nil
		}
		opts.Continue = list.Continue
	}
}

// lastChanged is the latest time an Event records, ignoring times its
// writer set more than eventClockSkew after now (the server sets
// creationTimestamp, its writer the others).
func lastChanged(ev *corev1.Event, now time.Time) time.Time {
	t := ev.CreationTimestamp.Time
	times := []time.Time{ev.LastTimestamp.Time, ev.FirstTimestamp.Time, ev.EventTime.Time}
	if s := ev.Series; s != nil {
		times = append(times, s.LastObservedTime.Time)
	}
	limit := now.Add(eventClockSkew)
	for _, u := range times {
		if u.After(t) && !u.After(limit) {
			t = u
		}
	}
	return t
}
