package nodes

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/record"
)

// ComponentKubelet is the source component of the events nodes report,
// the kubelet's, so that tools filtering on it find them.
const ComponentKubelet = "kubelet"

// Bounds on what a node may report.
const (
	// maxEventsPerReport is the most events one ReportEvents call may
	// carry (agents send at most 256).
	maxEventsPerReport = 1000
	// maxEventMessage is the longest message kept; longer ones are cut,
	// as events.k8s.io cuts its note.
	maxEventMessage = 1024
	maxEventReason  = 128
	// maxEventFieldPath bounds a field path; the kubelet's name one
	// container ("spec.initContainers{NAME}", NAME at most 63 bytes).
	maxEventFieldPath = 256
	// eventWriters and eventQueue size the service's recorder: several
	// nodes' events are written concurrently, and a burst waits in a
	// bounded queue (past it events are dropped and logged).
	eventWriters = 2
	eventQueue   = 4096
)

// newEventRecorder returns the recorder that writes nodes' events, as the
// service's own user.
func newEventRecorder(a API, lg *slog.Logger) (*record.Recorder, error) {
	cfg := a.LoopbackConfig(ServiceUser)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return record.New(client, ComponentKubelet, lg, record.Options{Writers: eventWriters, QueueSize: eventQueue}), nil
}

// ReportEvents records the events the calling node saw about its pods.
// Each event is checked on its own: it must name a pod bound to the node
// (else PERMISSION_DENIED) that still exists with the given uid (else
// NOT_FOUND), and be well formed (else INVALID_ARGUMENT).
func (s *Service) ReportEvents(ctx context.Context, req *api.EventReport) (*api.EventReportResponse, error) {
	node, err := callerNode(ctx)
	if err != nil {
		return nil, err
	}
	if n := len(req.GetEvents()); n > maxEventsPerReport {
		return nil, status.Errorf(codes.InvalidArgument, "%d events in one report, at most %d", n, maxEventsPerReport)
	}
	pods := map[types.NamespacedName]podLookup{}
	resp := &api.EventReportResponse{Events: make([]*api.Result, 0, len(req.GetEvents()))}
	for _, pe := range req.GetEvents() {
		resp.Events = append(resp.Events, result(s.podEvent(ctx, node, pe, pods)))
	}
	return resp, nil
}

// podLookup is a pod read once per report.
type podLookup struct {
	pod *corev1.Pod
	err error
}

// podEvent checks one event and queues it with the recorder.
func (s *Service) podEvent(ctx context.Context, node string, pe *api.PodEvent, pods map[types.NamespacedName]podLookup) error {
	if err := validatePodEvent(pe); err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: pe.GetNamespace(), Name: pe.GetName()}
	l, ok := pods[key]
	if !ok {
		l.pod, l.err = s.client(nodeUser(node)).Pods(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		pods[key] = l
	}
	switch pod := l.pod; {
	case apierrors.IsNotFound(l.err):
		return status.Errorf(codes.NotFound, "pod %s/%s is gone", key.Namespace, key.Name)
	case l.err != nil:
		return l.err
	case pod.Spec.NodeName != node:
		return status.Errorf(codes.PermissionDenied, "pod %s/%s is bound to node %q, not %q", key.Namespace, key.Name, pod.Spec.NodeName, node)
	case pe.GetUid() != "" && types.UID(pe.GetUid()) != pod.UID:
		return status.Errorf(codes.NotFound, "pod %s/%s with uid %s is gone", key.Namespace, key.Name, pe.GetUid())
	}
	s.events.Record(s.eventOf(node, l.pod, pe))
	return nil
}

func validatePodEvent(pe *api.PodEvent) error {
	switch {
	case pe.GetNamespace() == "" || pe.GetName() == "":
		return status.Error(codes.InvalidArgument, "event: namespace and name must be set")
	case pe.GetType() != corev1.EventTypeNormal && pe.GetType() != corev1.EventTypeWarning:
		return status.Errorf(codes.InvalidArgument, "event.type %q: must be Normal or Warning", pe.GetType())
	case pe.GetReason() == "" || len(pe.GetReason()) > maxEventReason:
		return status.Errorf(codes.InvalidArgument, "event.reason %q: must be 1 to %d characters", pe.GetReason(), maxEventReason)
	case len(pe.GetFieldPath()) > maxEventFieldPath:
		return status.Errorf(codes.InvalidArgument, "event.fieldPath of %d bytes: at most %d", len(pe.GetFieldPath()), maxEventFieldPath)
	case pe.GetCount() < 0:
		return status.Errorf(codes.InvalidArgument, "event.count %d: must not be negative", pe.GetCount())
	}
	return nil
}

// eventOf builds the core/v1 Event of pe, as the kubelet would write it.
func (s *Service) eventOf(node string, pod *corev1.Pod, pe *api.PodEvent) *corev1.Event {
	now := s.cfg.Now()
	first, last := msTime(pe.GetFirstSeenMs(), now), msTime(pe.GetLastSeenMs(), now)
	if last.Before(&first) {
		last = first
	}
	// A node's clock may run ahead of the server's: an event is not seen
	// later than the server hears of it.
	if last.After(now) {
		last = metav1.NewTime(now)
	}
	if first.After(now) {
		first = last
	}
	return &corev1.Event{
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			FieldPath: pe.GetFieldPath(),
		},
		Type:           pe.GetType(),
		Reason:         pe.GetReason(),
		Message:        truncate(pe.GetMessage(), maxEventMessage),
		Source:         corev1.EventSource{Component: ComponentKubelet, Host: node},
		Count:          max(pe.GetCount(), 1),
		FirstTimestamp: first,
		LastTimestamp:  last,
	}
}

func msTime(ms int64, def time.Time) metav1.Time {
	if ms <= 0 {
		return metav1.NewTime(def)
	}
	return metav1.NewTime(time.UnixMilli(ms))
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
