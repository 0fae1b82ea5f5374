package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
)

// batchDelay is how long the reporter waits for more changes before it
// sends a batch.
const batchDelay = 20 * time.Millisecond

// maxQueuedEvents bounds the distinct events waiting to be sent; repeats
// of a queued event only bump its count, and new events past the bound
// are dropped (and counted), so a flood cannot grow the queue.
const maxQueuedEvents = 1024

// maxEventBatch is the most events sent in one ReportEvents call.
const maxEventBatch = 256

// reporter collects what the pod manager reports and sends it to the
// server in batches. Items the server could not apply for a passing
// reason are sent again with the next batch, unless a newer report
// replaced them.
type reporter struct {
	client api.NodeClient
	lg     *slog.Logger
	// node builds the node report sent at the start of each connection.
	node func(ctx context.Context) (*api.NodeReport, error)

	mu         sync.Mutex                              // guards statuses, terminated, events, eventOrder, dropped, noEvents
	statuses   map[types.NamespacedName]*api.PodStatus // latest per pod
	terminated map[types.NamespacedName]*api.PodRef    // per pod
	events     map[eventKey]*api.PodEvent              // queued, repeats aggregated
	eventOrder []eventKey                              // events' keys, oldest first
	dropped    int                                     // events dropped since the last warning
	noEvents   bool                                    // the server has no ReportEvents
	kick       chan struct{}                           // cap 1: something to send
}

// eventKey tells repeats of an event apart from other events.
type eventKey struct {
	uid                                   types.UID
	fieldPath, eventType, reason, message string
}

var (
	_ pods.Reporter      = (*reporter)(nil)
	_ pods.EventReporter = (*reporter)(nil)
)

func newReporter(client api.NodeClient, node func(context.Context) (*api.NodeReport, error), lg *slog.Logger) *reporter {
	return &reporter{
		client: client, lg: lg, node: node,
		statuses:   map[types.NamespacedName]*api.PodStatus{},
		terminated: map[types.NamespacedName]*api.PodRef{},
		events:     map[eventKey]*api.PodEvent{},
		kick:       make(chan struct{}, 1),
	}
}

// PodStatus queues a pod's status.
func (r *reporter) PodStatus(pod types.NamespacedName, uid types.UID, status corev1.PodStatus) {
	data, err := status.Marshal()
	if err != nil {
		r.lg.Warn("encoding pod status", "pod", pod, "err", err)
		return
	}
	r.mu.Lock()
	r.statuses[pod] = &api.PodStatus{Namespace: pod.Namespace, Name: pod.Name, Uid: string(uid), StatusProtobuf: data}
	r.mu.Unlock()
	r.wake()
}

// PodTerminated queues the removal of a pod.
func (r *reporter) PodTerminated(pod types.NamespacedName, uid types.UID) {
	r.mu.Lock()
	r.terminated[pod] = &api.PodRef{Namespace: pod.Namespace, Name: pod.Name, Uid: string(uid)}
	r.mu.Unlock()
	r.wake()
}

// PodEvent queues an event about a pod, or counts it as a repeat of one
// queued.
func (r *reporter) PodEvent(pod types.NamespacedName, uid types.UID, ev pods.Event) {
	k := eventKey{uid: uid, fieldPath: ev.FieldPath, eventType: ev.Type, reason: ev.Reason, message: ev.Message}
	ms := ev.Time.UnixMilli()
	r.mu.Lock()
	switch q := r.events[k]; {
	case r.noEvents:
	case q != nil:
		q.Count++
		q.LastSeenMs = max(q.LastSeenMs, ms)
	case len(r.events) >= maxQueuedEvents:
		r.dropped++
	default:
		r.events[k] = &api.PodEvent{
			Namespace: pod.Namespace, Name: pod.Name, Uid: string(uid), FieldPath: ev.FieldPath,
			Type: ev.Type, Reason: ev.Reason, Message: ev.Message, Count: 1, FirstSeenMs: ms, LastSeenMs: ms,
		}
		r.eventOrder = append(r.eventOrder, k)
	}
	r.mu.Unlock()
	r.wake()
}

func (r *reporter) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// reportNode sends the node report.
func (r *reporter) reportNode(ctx context.Context) error {
	rep, err := r.node(ctx)
	if err != nil {
		return fmt.Errorf("node report: %w", err)
	}
	resp, err := r.client.UpdateStatus(ctx, &api.StatusUpdate{Node: rep})
	if err != nil {
		return fmt.Errorf("node report: %w", err)
	}
	if res := resp.GetNode(); res.GetCode() != 0 {
		return fmt.Errorf("node report refused: %s: %s", codes.Code(res.GetCode()), res.GetMessage())
	}
	return nil
}

// run sends batches until ctx ends or a call fails. Each connection may
// be to another server: one without ReportEvents turns events off only
// until the next run.
func (r *reporter) run(ctx context.Context) error {
	r.mu.Lock()
	r.noEvents = false
	r.mu.Unlock()
	r.wake() // whatever queued up while disconnected
	statuses := nodeclient.NewStatusSender(ctx, r.client)
	defer statuses.Close()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.kick:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(batchDelay):
		}
		// Events first: a Killing event must reach the server before the
		// pod's termination lets it remove the pod.
		if err := r.flushEvents(ctx); err != nil {
			return err
		}
		if err := r.flush(ctx, statuses); err != nil {
			return err
		}
	}
}

// flushEvents sends the queued events, oldest first, in batches. Events
// the server refuses are dropped; on a failed call the batch is queued
// again, merged with newer repeats.
func (r *reporter) flushEvents(ctx context.Context) error {
	// At most a full queue per flush, so a steady flood cannot keep the
	// statuses waiting.
	for range maxQueuedEvents/maxEventBatch + 1 {
		batch, dropped := r.takeEvents()
		if dropped > 0 {
			r.lg.Warn("event queue full, events dropped", "dropped", dropped)
		}
		if len(batch) == 0 {
			return nil
		}
		resp, err := r.client.ReportEvents(ctx, &api.EventReport{Events: batch})
		if status.Code(err) == codes.Unimplemented {
			r.lg.Info("the server does not take events; not sending any")
			r.mu.Lock()
			r.noEvents, r.events, r.eventOrder = true, map[eventKey]*api.PodEvent{}, nil
			r.mu.Unlock()
			return nil
		}
		if err != nil {
			r.requeueEvents(batch)
			return fmt.Errorf("event report: %w", err)
		}
		for i, res := range resp.GetEvents() {
			if res.GetCode() != 0 && i < len(batch) {
				r.lg.Debug("event refused", "pod", batch[i].Namespace+"/"+batch[i].Name, "reason", batch[i].Reason,
					"code", codes.Code(res.GetCode()), "err", res.GetMessage())
			}
		}
	}
	r.wake() // the rest goes with the next batch
	return nil
}

// takeEvents removes up to maxEventBatch queued events, oldest first, and
// the count of events dropped since the last call.
func (r *reporter) takeEvents() ([]*api.PodEvent, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(len(r.eventOrder), maxEventBatch)
	batch := make([]*api.PodEvent, 0, n)
	for _, k := range r.eventOrder[:n] {
		batch = append(batch, r.events[k])
		delete(r.events, k)
	}
	r.eventOrder = r.eventOrder[n:]
	if len(r.eventOrder) == 0 {
		r.eventOrder = nil
	}
	dropped := r.dropped
	r.dropped = 0
	return batch, dropped
}

// requeueEvents puts back events that could not be sent, ahead of newer
// ones and merged with their repeats, as far as the queue's bound allows.
func (r *reporter) requeueEvents(batch []*api.PodEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var order []eventKey
	for _, ev := range batch {
		k := eventKey{uid: types.UID(ev.Uid), fieldPath: ev.FieldPath, eventType: ev.Type, reason: ev.Reason, message: ev.Message}
		if q := r.events[k]; q != nil {
			q.Count += ev.Count
			q.FirstSeenMs = min(q.FirstSeenMs, ev.FirstSeenMs)
			continue
		}
		if len(r.events) >= maxQueuedEvents {
			r.dropped++
			continue
		}
		r.events[k] = ev
		order = append(order, k)
	}
	r.eventOrder = append(order, r.eventOrder...)
}

// flush sends what is queued through sender. On a failed call everything
// is queued again.
func (r *reporter) flush(ctx context.Context, sender *nodeclient.StatusSender) error {
	r.mu.Lock()
	statuses, terminated := r.statuses, r.terminated
	r.statuses = map[types.NamespacedName]*api.PodStatus{}
	r.terminated = map[types.NamespacedName]*api.PodRef{}
	r.mu.Unlock()
	if len(statuses) == 0 && len(terminated) == 0 {
		return nil
	}
	req := &api.StatusUpdate{}
	for _, s := range statuses {
		req.Pods = append(req.Pods, s)
	}
	for _, t := range terminated {
		req.Terminated = append(req.Terminated, t)
	}
	resp, err := sender.Send(ctx, req)
	if err != nil {
		r.requeue(statuses, terminated)
		return fmt.Errorf("status update: %w", err)
	}
	retryS := map[types.NamespacedName]*api.PodStatus{}
	for i, res := range resp.GetPods() {
		if i < len(req.Pods) && retryable(res) {
			p := req.Pods[i]
			retryS[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = p
		} else if res.GetCode() != 0 {
			r.lg.Warn("pod status refused", "pod", req.Pods[i].Namespace+"/"+req.Pods[i].Name, "code", codes.Code(res.GetCode()), "err", res.GetMessage())
		}
	}
	retryT := map[types.NamespacedName]*api.PodRef{}
	for i, res := range resp.GetTerminated() {
		if i < len(req.Terminated) && retryable(res) {
			p := req.Terminated[i]
			retryT[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = p
		}
	}
	r.requeue(retryS, retryT)
	if len(retryS)+len(retryT) > 0 {
		r.wake()
	}
	return nil
}

// requeue puts back items no newer report has replaced.
func (r *reporter) requeue(statuses map[types.NamespacedName]*api.PodStatus, terminated map[types.NamespacedName]*api.PodRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range statuses {
		if _, newer := r.statuses[k]; !newer {
			r.statuses[k] = v
		}
	}
	for k, v := range terminated {
		if _, newer := r.terminated[k]; !newer {
			r.terminated[k] = v
		}
	}
}

// retryable reports whether an item failed for a reason that may pass.
func retryable(res *api.Result) bool {
	switch codes.Code(res.GetCode()) {
	case codes.OK, codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument:
		return false
	}
	return true
}
