package nodes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/envelope"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Store prefixes a session follows (and nodesPrefix). One watch on their
// common parent keeps the changes of all kinds in revision order.
const (
	registryPrefix  = registry.Root
	podsPrefix      = registry.Root + "pods/"
	servicesPrefix  = registry.Root + "services/"
	endpointsPrefix = registry.Root + "endpoints/"
	slicesPrefix    = registry.Root + "endpointslices/"
	ctbsPrefix      = registry.Root + "clustertrustbundles/"
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
	ss := &session{svc: s, node: node, stream: stream, last: req.GetLastRevision(), protobuf: req.GetAcceptProtobuf(),
		slices: req.GetEndpointSlices()}
	defer func() {
		if ss.sub != nil {
			s.hub.unsubscribe(ss.sub)
		}
	}()
	if ss.last > 0 {
		if err := ss.resume(ctx); err != nil {
			lg.Info("session revision unavailable; sending a complete set", "revision", ss.last, "err", err)
			ss.last = 0
		}
	}
	if ss.last == 0 {
		if err := ss.sendComplete(ctx); err != nil {
			return err
		}
	}
	lg.Debug("session started", "revision", ss.last)
	err = ss.loop(ctx)
	lg.Debug("session ended", "err", err)
	return err
}

// session is one node's stream. Only the goroutine running Session uses it.
type session struct {
	svc    *Service
	node   string
	stream api.Node_SessionServer
	// protobuf says the agent reads objects in the protobuf envelope, the
	// form changes are built in; others get them as JSON.
	protobuf bool
	// slices says the agent reads EndpointSlices: it gets them instead
	// of Endpoints.
	slices bool
	sub    *subscriber // the session's queue in the hub
	// refs are the ConfigMaps and Secrets the node's pods reference.
	refs *refs
	// last is the revision of the last message sent (or the agent's own).
	last     int64
	lastSent time.Time
}

// resume follows the hub from ss.last, which must be neither compacted
// nor ahead of the store.
func (ss *session) resume(ctx context.Context) error {
	// A list that matches no key checks the revision cheaply.
	if _, _, err := ss.svc.st.List(ctx, registryPrefix+"\x00", ss.last); err != nil {
		return err
	}
	if err := ss.refsAt(ctx, ss.last); err != nil {
		return err
	}
	ss.sub = newSubscriber(ss.node)
	if _, err := ss.svc.hub.subscribe(ctx, ss.sub, ss.last); err != nil {
		ss.sub = nil
		return err
	}
	return nil
}

// loop batches the hub's deltas into INCREMENTAL messages: a batch goes
// out BatchDelay after its last change, or maxBatchDelay after its first.
func (ss *session) loop(ctx context.Context) error {
	var (
		pending  []pendingChange
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
		case <-ss.sub.ready:
			deltas, dropped := ss.sub.take()
			if dropped {
				// Fell behind the hub: start over with a complete set.
				if err := ss.sendComplete(ctx); err != nil {
					return err
				}
				pending, rev, batching = nil, ss.last, false
				timer.Stop()
				continue
			}
			progressOnly := true
			for _, d := range deltas {
				rev = max(rev, d.ev.Revision)
				if d.ev.Type == store.EventProgress {
					continue
				}
				progressOnly = false
				for i, c := range ss.deltaChanges(ctx, d) {
					// Only a pod's own change may be an echo; the objects
					// it brings follow it.
					pending = append(pending, pendingChange{c: c, rev: d.ev.Revision, echo: i == 0 && ss.mayEcho(d)})
				}
			}
			if progressOnly {
				if !batching && rev > ss.last && time.Since(ss.lastSent) >= idleRevisionEvery {
					if err := ss.send(api.SessionMessage_INCREMENTAL, rev, nil); err != nil {
						return err
					}
				}
				continue
			}
			if len(pending) == 0 {
				continue
			}
			if !batching {
				batching, first = true, time.Now()
			}
			wait := min(ss.svc.cfg.BatchDelay, maxBatchDelay-time.Since(first))
			timer.Reset(max(wait, 0))
		case <-timer.C:
			// A batch left empty by echoes is not sent: the next message
			// still chains from the last one sent.
			if changes := ss.withoutEchoes(pending); len(changes) > 0 {
				if err := ss.send(api.SessionMessage_INCREMENTAL, rev, changes); err != nil {
					return err
				}
			}
			pending, batching = nil, false
		}
	}
}

// pendingChange is a change waiting in a session's batch.
type pendingChange struct {
	c    *api.Change
	rev  int64
	echo bool // may be the node's own status write (see mayEcho)
}

// carries tells whether the session carries objects of a shared kind:
// Endpoints or EndpointSlices, as the agent asked, and every other kind.
func (ss *session) carries(kind api.ObjectKind) bool {
	switch kind {
	case api.ObjectKind_OBJECT_KIND_ENDPOINTS:
		return !ss.slices
	case api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE:
		return ss.slices
	}
	return true
}

// mayEcho tells whether d may be a status the node wrote itself: an
// update of a pod that stays on the node.
func (ss *session) mayEcho(d *delta) bool {
	return d.change == nil && d.ev.Type == store.EventUpdate && d.oldNode == ss.node && d.newNode == ss.node
}

// withoutEchoes returns the changes of a batch, less those the node wrote
// itself. It looks at the echoes when the batch goes out rather than when
// a change arrives, which gives the write that made a change time to
// record its revision.
func (ss *session) withoutEchoes(pending []pendingChange) []*api.Change {
	changes := make([]*api.Change, 0, len(pending))
	for _, p := range pending {
		if p.echo && ss.svc.echoes.take(ss.node, p.rev) {
			continue
		}
		changes = append(changes, p.c)
	}
	return changes
}

// deltaChanges returns the changes d makes for the node: none, the
// change of a shared object or of a pod, the latter followed by those of
// the objects it starts or stops referencing.
func (ss *session) deltaChanges(ctx context.Context, d *delta) []*api.Change {
	if d.change != nil {
		c := d.change
		if !ss.carries(c.GetKind()) {
			return nil
		}
		if isReferencedKind(c.GetKind()) && !ss.refs.pass(objRef{kind: c.GetKind(), ns: c.GetNamespace(), name: c.GetName()}, d.ev.Revision) {
			return nil
		}
		return []*api.Change{c}
	}
	kind, ns, name, ok := parseKey(d.ev.Key)
	if !ok || kind != api.ObjectKind_OBJECT_KIND_POD {
		return nil
	}
	c, err := podChange(d.ev, ns, name, d.oldNode == ss.node, d.newNode == ss.node)
	if err != nil {
		ss.svc.lg.Warn("skipping undecodable object", "key", d.ev.Key, "err", err)
	}
	if c == nil {
		return nil
	}
	return append([]*api.Change{c}, ss.podRefChanges(ctx, c, d.ev)...)
}

func (ss *session) send(typ api.SessionMessage_Type, rev int64, changes []*api.Change) error {
	prev := ss.last
	if typ == api.SessionMessage_COMPLETE {
		prev = 0
	}
	if !ss.protobuf {
		changes = jsonChanges(changes, ss.svc.lg)
	}
	msg := &api.SessionMessage{Type: typ, PrevRevision: prev, Revision: rev, Changes: changes}
	if err := ss.stream.Send(msg); err != nil {
		return err
	}
	ss.last, ss.lastSent = rev, time.Now()
	return nil
}

// sendComplete subscribes to the hub and sends the node's pods, the
// ConfigMaps and Secrets they reference, and every service, endpoints (or
// EndpointSlice), Node and ClusterTrustBundle as of the revision the
// hub's deltas follow.
func (ss *session) sendComplete(ctx context.Context) error {
	if ss.sub != nil {
		ss.svc.hub.unsubscribe(ss.sub)
	}
	ss.sub = newSubscriber(ss.node)
	rev, err := ss.svc.hub.subscribe(ctx, ss.sub, 0)
	if err != nil {
		return grpcError(err)
	}
	st := ss.svc.st
	ss.refs = newRefs()
	var changes []*api.Change
	endpoints := endpointsPrefix
	if ss.slices {
		endpoints = slicesPrefix
	}
	for _, prefix := range []string{podsPrefix, servicesPrefix, endpoints, nodesPrefix, ctbsPrefix} {
		kvs, _, err := st.List(ctx, prefix, rev)
		if err != nil {
			return grpcError(err)
		}
		for _, kv := range kvs {
			c, err := ss.listedChange(kv)
			if err != nil {
				ss.svc.lg.Warn("skipping undecodable object", "key", kv.Key, "err", err)
			}
			if c != nil {
				changes = append(changes, c)
				if c.GetKind() == api.ObjectKind_OBJECT_KIND_POD {
					ss.trackPod(kv.Key, kv.Value)
				}
			}
		}
	}
	puts, err := ss.refPuts(ctx, ss.refs.referenced(), rev)
	if err != nil {
		return grpcError(err)
	}
	return ss.send(api.SessionMessage_COMPLETE, rev, append(changes, puts...))
}

// listedChange turns a listed object into the change that puts it on
// the node, or nil if it does not concern the node.
func (ss *session) listedChange(kv store.KV) (*api.Change, error) {
	kind, ns, name, ok := parseKey(kv.Key)
	if !ok {
		return nil, nil
	}
	ev := store.Event{Type: store.EventCreate, Key: kv.Key, Value: kv.Value, Revision: kv.ModRevision}
	switch kind {
	case api.ObjectKind_OBJECT_KIND_NODE:
		return ss.svc.nodes.get(kv, name)
	case api.ObjectKind_OBJECT_KIND_SERVICE, api.ObjectKind_OBJECT_KIND_ENDPOINTS, api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE,
		api.ObjectKind_OBJECT_KIND_CLUSTERTRUSTBUNDLE:
		return sharedChange(ev, kind, ns, name)
	case api.ObjectKind_OBJECT_KIND_POD:
	default:
		return nil, nil
	}
	if !ss.mayBeBound(kv.Value) || podNodeName(kv.Value) != ss.node {
		return nil, nil
	}
	return podChange(ev, ns, name, false, true)
}

// sharedChange turns an event on a service, endpoints, EndpointSlice,
// Node or ClusterTrustBundle into the change every node sees, or nil if
// there is none.
func sharedChange(ev store.Event, kind api.ObjectKind, ns, name string) (*api.Change, error) {
	if kind == api.ObjectKind_OBJECT_KIND_NODE {
		return nodeChange(ev, name)
	}
	action := api.Change_PUT
	if ev.Type == store.EventDelete {
		action = api.Change_DELETE
	}
	obj, err := withRevision(kind, ev.Value, ev.Revision)
	if err != nil {
		return nil, err
	}
	return &api.Change{Action: action, Kind: kind, Namespace: ns, Name: name, Object: obj}, nil
}

// podChange turns an event on a pod into the node's change: wasOn and
// isOn say whether the pod was bound to the node before and after it.
func podChange(ev store.Event, ns, name string, wasOn, isOn bool) (*api.Change, error) {
	if !wasOn && !isOn {
		return nil, nil
	}
	action := api.Change_PUT
	if ev.Type == store.EventDelete || !isOn {
		// A pod moved away from the node is not possible through the
		// API, but the node must drop the pod if it happened.
		action = api.Change_DELETE
	}
	obj, err := withRevision(api.ObjectKind_OBJECT_KIND_POD, ev.Value, ev.Revision)
	if err != nil {
		return nil, err
	}
	return &api.Change{Action: action, Kind: api.ObjectKind_OBJECT_KIND_POD, Namespace: ns, Name: name, Object: obj}, nil
}

// mayBeBound is a cheap test of whether a stored pod may be bound to the
// node, which spares reading the rest of a complete set's pods: false
// only if the node's name appears nowhere in the stored bytes, as it
// would, unescaped, in either stored form.
func (ss *session) mayBeBound(value []byte) bool {
	return bytes.Contains(value, []byte(ss.node))
}

// parseKey splits "/registry/RESOURCE/NS/NAME" (or, cluster-scoped,
// "/registry/nodes/NAME" and "/registry/clustertrustbundles/NAME") for the
// kinds a session carries.
func parseKey(key string) (kind api.ObjectKind, ns, name string, ok bool) {
	if name, ok := strings.CutPrefix(key, nodesPrefix); ok {
		return api.ObjectKind_OBJECT_KIND_NODE, "", name, name != "" && !strings.Contains(name, "/")
	}
	if name, ok := strings.CutPrefix(key, ctbsPrefix); ok {
		return api.ObjectKind_OBJECT_KIND_CLUSTERTRUSTBUNDLE, "", name, name != "" && !strings.Contains(name, "/")
	}
	for _, k := range namespacedKinds {
		if rest, ok := strings.CutPrefix(key, k.prefix); ok {
			ns, name, ok = strings.Cut(rest, "/")
			return k.kind, ns, name, ok && ns != "" && name != ""
		}
	}
	return 0, "", "", false
}

// namespacedKinds are the namespaced kinds a session carries, by store
// prefix.
var namespacedKinds = []struct {
	prefix string
	kind   api.ObjectKind
}{
	{podsPrefix, api.ObjectKind_OBJECT_KIND_POD},
	{servicesPrefix, api.ObjectKind_OBJECT_KIND_SERVICE},
	{endpointsPrefix, api.ObjectKind_OBJECT_KIND_ENDPOINTS},
	{slicesPrefix, api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE},
	{configMapsPrefix, api.ObjectKind_OBJECT_KIND_CONFIGMAP},
	{secretsPrefix, api.ObjectKind_OBJECT_KIND_SECRET},
}

// withRevision returns a stored object (a pod, service, endpoints or
// EndpointSlice) in
// the protobuf envelope with its revision as resourceVersion. The revision
// is put into the stored bytes when they are protobuf; a value stored as
// JSON by an earlier version is decoded and encoded.
func withRevision(kind api.ObjectKind, value []byte, rev int64) ([]byte, error) {
	if out := registry.ProtobufWithResourceVersion(value, rev); out != nil {
		return out, nil
	}
	obj, gv, kindName := newObject(kind)
	if obj == nil {
		return nil, fmt.Errorf("no object of kind %v", kind)
	}
	if err := registry.DecodeStored(value, obj); err != nil {
		return nil, err
	}
	obj.SetResourceVersion(strconv.FormatInt(rev, 10))
	return envelope.Encode(obj, gv, kindName)
}

// sessionObject is what a session carries: a core/v1 object or an
// EndpointSlice.
type sessionObject interface {
	runtime.Object
	envelope.Message
	envelope.Unmarshaler
	SetResourceVersion(string)
}

// newObject returns an empty object of kind with its apiVersion and the
// name of its kind, or nil for an unknown kind.
func newObject(kind api.ObjectKind) (obj sessionObject, apiVersion, kindName string) {
	switch kind {
	case api.ObjectKind_OBJECT_KIND_POD:
		return &corev1.Pod{}, "v1", "Pod"
	case api.ObjectKind_OBJECT_KIND_SERVICE:
		return &corev1.Service{}, "v1", "Service"
	case api.ObjectKind_OBJECT_KIND_ENDPOINTS:
		return &corev1.Endpoints{}, "v1", "Endpoints"
	case api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE:
		return &discoveryv1.EndpointSlice{}, discoveryv1.SchemeGroupVersion.String(), "EndpointSlice"
	case api.ObjectKind_OBJECT_KIND_NODE:
		return &corev1.Node{}, "v1", "Node"
	case api.ObjectKind_OBJECT_KIND_CONFIGMAP:
		return &corev1.ConfigMap{}, "v1", "ConfigMap"
	case api.ObjectKind_OBJECT_KIND_SECRET:
		return &corev1.Secret{}, "v1", "Secret"
	case api.ObjectKind_OBJECT_KIND_CLUSTERTRUSTBUNDLE:
		return &certificatesv1.ClusterTrustBundle{}, certificatesv1.SchemeGroupVersion.String(), "ClusterTrustBundle"
	}
	return nil, "", ""
}

// jsonChanges returns changes with their objects as JSON, for an agent
// that does not read protobuf. changes are shared and left as they are.
func jsonChanges(changes []*api.Change, lg *slog.Logger) []*api.Change {
	out := make([]*api.Change, 0, len(changes))
	for _, c := range changes {
		if len(c.GetObject()) == 0 {
			// A DELETE without object (a ConfigMap or Secret no longer
			// referenced) reads alike in either form.
			out = append(out, c)
			continue
		}
		obj, _, _ := newObject(c.GetKind())
		if obj == nil || api.DecodeObject(c.GetObject(), obj) != nil {
			lg.Warn("skipping a change that cannot be sent as JSON", "kind", c.GetKind(), "namespace", c.GetNamespace(), "name", c.GetName())
			continue
		}
		data, err := json.Marshal(obj)
		if err != nil {
			lg.Warn("skipping a change that cannot be sent as JSON", "kind", c.GetKind(), "namespace", c.GetNamespace(), "name", c.GetName(), "err", err)
			continue
		}
		out = append(out, &api.Change{Action: c.GetAction(), Kind: c.GetKind(), Namespace: c.GetNamespace(), Name: c.GetName(), Object: data})
	}
	return out
}
