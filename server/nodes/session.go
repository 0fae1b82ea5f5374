package nodes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/store"
)

// Store prefixes a session follows (and nodesPrefix). One watch on their
// common parent keeps the changes of all kinds in revision order.
const (
	registryPrefix  = "/registry/"
	podsPrefix      = "/registry/pods/"
	servicesPrefix  = "/registry/services/"
	endpointsPrefix = "/registry/endpoints/"
)

// maxBatchDelay bounds how long a steady stream of changes can hold a
// batch back, and idleRevisionEvery how often a quiet session is told the
// revision moved on (so that a reconnect resumes from a recent one).
const (
	maxBatchDelay     = time.Second
	idleRevisionEvery = 30 * time.Second
)

// Session streams the calling node's desired state.
func (s *Service) Session(req *api.SessionRequest, stream api.Node_SessionServer) error {
	ctx := stream.Context()
	node, err := callerNode(ctx)
	if err != nil {
		return err
	}
	lg := s.lg.With("node", node)
	ss := &session{svc: s, node: node, stream: stream, last: req.GetLastRevision()}
	var events <-chan store.Event
	if ss.last > 0 {
		events, err = s.st.Watch(ctx, registryPrefix, ss.last)
		if errors.Is(err, store.ErrCompacted) || errors.Is(err, store.ErrFutureRevision) {
			lg.Info("session revision unavailable; sending a complete set", "revision", ss.last, "err", err)
			err, ss.last = nil, 0
		}
		if err != nil {
			return grpcError(err)
		}
	}
	if ss.last == 0 {
		if events, err = ss.sendComplete(ctx); err != nil {
			return err
		}
	}
	lg.Debug("session started", "revision", ss.last)
	err = ss.loop(ctx, events)
	lg.Debug("session ended", "err", err)
	return err
}

// session is one node's stream. Only the goroutine running Session uses it.
type session struct {
	svc    *Service
	node   string
	stream api.Node_SessionServer
	// last is the revision of the last message sent (or the agent's own).
	last     int64
	lastSent time.Time
}

// loop batches the watch's events into INCREMENTAL messages: a batch goes
// out BatchDelay after its last change, or maxBatchDelay after its first.
func (ss *session) loop(ctx context.Context, events <-chan store.Event) error {
	var (
		pending  []*api.Change
		rev      = ss.last // revision the pending batch brings the agent to
		first    time.Time // of the pending batch
		timer    = time.NewTimer(time.Hour)
		batching = false
	)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ss.svc.stopped:
			return status.Error(codes.Unavailable, "server is shutting down")
		case ev, ok := <-events:
			if !ok {
				return status.Error(codes.Unavailable, "watch ended")
			}
			switch ev.Type {
			case store.EventError:
				if !errors.Is(ev.Err, store.ErrCompacted) {
					return grpcError(ev.Err)
				}
				// Fell behind the log: start over with a complete set.
				var err error
				if events, err = ss.sendComplete(ctx); err != nil {
					return err
				}
				pending, rev, batching = nil, ss.last, false
				timer.Stop()
				continue
			case store.EventProgress:
				rev = max(rev, ev.Revision)
				if !batching && rev > ss.last && time.Since(ss.lastSent) >= idleRevisionEvery {
					if err := ss.send(api.SessionMessage_INCREMENTAL, rev, nil); err != nil {
						return err
					}
				}
				continue
			}
			rev = max(rev, ev.Revision)
			c, err := ss.change(ev)
			if err != nil {
				ss.svc.lg.Warn("skipping undecodable object", "key", ev.Key, "err", err)
			}
			if c == nil {
				continue
			}
			pending = append(pending, c)
			if !batching {
				batching, first = true, time.Now()
			}
			wait := min(ss.svc.cfg.BatchDelay, maxBatchDelay-time.Since(first))
			timer.Reset(max(wait, 0))
		case <-timer.C:
			if err := ss.send(api.SessionMessage_INCREMENTAL, rev, pending); err != nil {
				return err
			}
			pending, batching = nil, false
		}
	}
}

func (ss *session) send(typ api.SessionMessage_Type, rev int64, changes []*api.Change) error {
	prev := ss.last
	if typ == api.SessionMessage_COMPLETE {
		prev = 0
	}
	msg := &api.SessionMessage{Type: typ, PrevRevision: prev, Revision: rev, Changes: changes}
	if err := ss.stream.Send(msg); err != nil {
		return err
	}
	ss.last, ss.lastSent = rev, time.Now()
	return nil
}

// sendComplete sends the node's pods and every service and endpoints as of
// one revision, and returns a watch of the changes after it.
func (ss *session) sendComplete(ctx context.Context) (<-chan store.Event, error) {
	st := ss.svc.st
	rev, err := st.CurrentRevision(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	var changes []*api.Change
	for _, prefix := range []string{podsPrefix, servicesPrefix, endpointsPrefix, nodesPrefix} {
		kvs, _, err := st.List(ctx, prefix, rev)
		if err != nil {
			return nil, grpcError(err)
		}
		for _, kv := range kvs {
			c, err := ss.change(store.Event{Type: store.EventCreate, Key: kv.Key, Value: kv.Value, Revision: kv.ModRevision})
			if err != nil {
				ss.svc.lg.Warn("skipping undecodable object", "key", kv.Key, "err", err)
			}
			if c != nil {
				changes = append(changes, c)
			}
		}
	}
	events, err := st.Watch(ctx, registryPrefix, rev)
	if err != nil {
		return nil, grpcError(err)
	}
	if err := ss.send(api.SessionMessage_COMPLETE, rev, changes); err != nil {
		return nil, err
	}
	return events, nil
}

// change turns a store event into the change the node must see, or nil
// if the event does not concern it.
func (ss *session) change(ev store.Event) (*api.Change, error) {
	kind, ns, name, ok := parseKey(ev.Key)
	if !ok {
		return nil, nil
	}
	if kind == api.ObjectKind_OBJECT_KIND_NODE {
		return nodeChange(ev, name)
	}
	action := api.Change_PUT
	if ev.Type == store.EventDelete {
		action = api.Change_DELETE
	}
	isPod := kind == api.ObjectKind_OBJECT_KIND_POD
	if isPod && !ss.bound(ev.Value) && !ss.bound(ev.PrevValue) {
		return nil, nil
	}
	obj, err := withRevision(kind, ev.Value, ev.Revision)
	if err != nil {
		return nil, err
	}
	if isPod && !onNode(obj, ss.node) {
		if ev.Type == store.EventDelete || !ss.bound(ev.PrevValue) {
			return nil, nil
		}
		// Moved away from the node: not possible through the API, but
		// the node must drop the pod if it happened.
		action = api.Change_DELETE
	}
	return &api.Change{Action: action, Kind: kind, Namespace: ns, Name: name, Object: obj}, nil
}

// bound is a cheap test of whether a stored pod may be bound to the node:
// false only if it surely is not.
func (ss *session) bound(value []byte) bool {
	return value != nil && bytes.Contains(value, []byte(`"nodeName":`+strconv.Quote(ss.node)))
}

func onNode(obj []byte, node string) bool {
	var p struct {
		Spec struct {
			NodeName string `json:"nodeName"`
		} `json:"spec"`
	}
	return json.Unmarshal(obj, &p) == nil && p.Spec.NodeName == node
}

// parseKey splits "/registry/RESOURCE/NS/NAME" (or "/registry/nodes/NAME")
// for the kinds a session carries.
func parseKey(key string) (kind api.ObjectKind, ns, name string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(key, podsPrefix):
		kind, rest = api.ObjectKind_OBJECT_KIND_POD, key[len(podsPrefix):]
	case strings.HasPrefix(key, servicesPrefix):
		kind, rest = api.ObjectKind_OBJECT_KIND_SERVICE, key[len(servicesPrefix):]
	case strings.HasPrefix(key, endpointsPrefix):
		kind, rest = api.ObjectKind_OBJECT_KIND_ENDPOINTS, key[len(endpointsPrefix):]
	case strings.HasPrefix(key, nodesPrefix):
		name = key[len(nodesPrefix):]
		return api.ObjectKind_OBJECT_KIND_NODE, "", name, name != "" && !strings.Contains(name, "/")
	default:
		return 0, "", "", false
	}
	ns, name, ok = strings.Cut(rest, "/")
	return kind, ns, name, ok && ns != "" && name != ""
}

// withRevision decodes a stored object (JSON without resourceVersion) and
// encodes it again with its revision as resourceVersion.
func withRevision(kind api.ObjectKind, value []byte, rev int64) ([]byte, error) {
	var obj interface {
		SetResourceVersion(string)
	}
	switch kind {
	case api.ObjectKind_OBJECT_KIND_POD:
		obj = &corev1.Pod{}
	case api.ObjectKind_OBJECT_KIND_SERVICE:
		obj = &corev1.Service{}
	default:
		obj = &corev1.Endpoints{}
	}
	if err := json.Unmarshal(value, obj); err != nil {
		return nil, err
	}
	obj.SetResourceVersion(strconv.FormatInt(rev, 10))
	return json.Marshal(obj)
}
