package nodes

import (
	"cmp"
	"context"
	"errors"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/podrefs"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Sessions carry the ConfigMaps and Secrets that the node's pods
// reference, and only those (see OBJECT_KIND_CONFIGMAP in
// api/node.proto). The hub hands every change of either kind to every
// session, built once; each session passes on only those of objects its
// node needs, after the state it last sent. A pod's references are read
// once, when the pod comes to the node: the fields that name objects
// cannot change afterwards.

// Store prefixes of the referenced kinds.
const (
	configMapsPrefix = registry.Root + "configmaps/"
	secretsPrefix    = registry.Root + "secrets/"
)

// objRef names a ConfigMap or Secret.
type objRef struct {
	kind     api.ObjectKind
	ns, name string
}

// key is the object's store key.
func (r objRef) key() string {
	prefix := configMapsPrefix
	if r.kind == api.ObjectKind_OBJECT_KIND_SECRET {
		prefix = secretsPrefix
	}
	return prefix + r.ns + "/" + r.name
}

func isReferencedKind(k api.ObjectKind) bool {
	return k == api.ObjectKind_OBJECT_KIND_CONFIGMAP || k == api.ObjectKind_OBJECT_KIND_SECRET
}

// refs tracks which ConfigMaps and Secrets the node's pods reference, and
// the revision of the state of each last sent to the agent (0: none).
// Only the session's goroutine uses it.
type refs struct {
	byPod map[string][]objRef // by pod store key
	count map[objRef]int
	sent  map[objRef]int64
}

func newRefs() *refs {
	return &refs{byPod: map[string][]objRef{}, count: map[objRef]int{}, sent: map[objRef]int64{}}
}

// addPod records the references of a pod that came to the node and
// returns those no other pod of the node had. A pod already recorded adds
// nothing.
func (r *refs) addPod(podKey string, pod *corev1.Pod) []objRef {
	if _, ok := r.byPod[podKey]; ok {
		return nil
	}
	var own, added []objRef
	for _, ref := range podrefs.Of(pod) {
		o := objRef{kind: api.ObjectKind_OBJECT_KIND_CONFIGMAP, ns: pod.Namespace, name: ref.Name}
		if ref.Kind == podrefs.Secret {
			o.kind = api.ObjectKind_OBJECT_KIND_SECRET
		}
		own = append(own, o)
		if r.count[o]++; r.count[o] == 1 {
			added = append(added, o)
		}
	}
	r.byPod[podKey] = own
	return added
}

// removePod forgets a pod that left the node and returns the objects no
// pod of the node references any more.
func (r *refs) removePod(podKey string) []objRef {
	own, ok := r.byPod[podKey]
	if !ok {
		return nil
	}
	delete(r.byPod, podKey)
	var removed []objRef
	for _, o := range own {
		if r.count[o]--; r.count[o] <= 0 {
			delete(r.count, o)
			delete(r.sent, o)
			removed = append(removed, o)
		}
	}
	return removed
}

// pass tells whether a change at rev of the object goes to the agent: it
// is referenced and newer than what the agent has. It records rev as sent.
func (r *refs) pass(o objRef, rev int64) bool {
	if r.count[o] == 0 || rev <= r.sent[o] {
		return false
	}
	r.sent[o] = rev
	return true
}

// referenced returns the referenced objects, sorted.
func (r *refs) referenced() []objRef {
	out := make([]objRef, 0, len(r.count))
	for o := range r.count {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b objRef) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.ns, b.ns), cmp.Compare(a.name, b.name))
	})
	return out
}

// trackPod records the references of the stored pod under key; it returns
// the objects that became referenced.
func (ss *session) trackPod(key string, value []byte) []objRef {
	pod := &corev1.Pod{}
	if err := registry.DecodeStored(value, pod); err != nil {
		ss.svc.lg.Warn("skipping undecodable pod", "key", key, "err", err)
		return nil
	}
	return ss.refs.addPod(key, pod)
}

// refPuts returns the changes putting the current state of objects that
// became referenced, as of revision rev (0: the latest). A missing object
// is simply not sent: its creation will be.
func (ss *session) refPuts(ctx context.Context, added []objRef, rev int64) ([]*api.Change, error) {
	var out []*api.Change
	for _, o := range added {
		kv, err := ss.getAt(ctx, o.key(), rev)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !ss.refs.pass(o, kv.ModRevision) {
			continue
		}
		obj, err := withRevision(o.kind, kv.Value, kv.ModRevision)
		if err != nil {
			ss.svc.lg.Warn("skipping undecodable object", "key", kv.Key, "err", err)
			continue
		}
		out = append(out, &api.Change{Action: api.Change_PUT, Kind: o.kind, Namespace: o.ns, Name: o.name, Object: obj})
	}
	return out, nil
}

// getAt reads one key as of rev (0: the latest).
func (ss *session) getAt(ctx context.Context, key string, rev int64) (store.KV, error) {
	if rev == 0 {
		return ss.svc.st.Get(ctx, key)
	}
	kvs, _, err := ss.svc.st.List(ctx, key, rev)
	if err != nil {
		return store.KV{}, err
	}
	for _, kv := range kvs {
		if kv.Key == key {
			return kv, nil
		}
	}
	return store.KV{}, store.ErrNotFound
}

// refDeletes returns the changes removing objects no longer referenced.
func refDeletes(removed []objRef) []*api.Change {
	out := make([]*api.Change, 0, len(removed))
	for _, o := range removed {
		out = append(out, &api.Change{Action: api.Change_DELETE, Kind: o.kind, Namespace: o.ns, Name: o.name})
	}
	return out
}

// refsAt rebuilds the references of the node's pods as of rev, for a
// session resuming from it: the agent holds every referenced object as of
// rev.
func (ss *session) refsAt(ctx context.Context, rev int64) error {
	ss.refs = newRefs()
	kvs, _, err := ss.svc.st.List(ctx, podsPrefix, rev)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if ss.mayBeBound(kv.Value) && podNodeName(kv.Value) == ss.node {
			ss.trackPod(kv.Key, kv.Value)
		}
	}
	for o := range ss.refs.count {
		ss.refs.sent[o] = rev
	}
	return nil
}

// podRefChanges returns the changes of referenced objects that a change
// of a pod of the node brings: puts of objects that became referenced,
// deletes of those no longer.
func (ss *session) podRefChanges(ctx context.Context, c *api.Change, ev store.Event) []*api.Change {
	if c.GetAction() == api.Change_DELETE {
		return refDeletes(ss.refs.removePod(ev.Key))
	}
	if _, known := ss.refs.byPod[ev.Key]; known {
		// Status writes and the like: the references cannot change.
		return nil
	}
	added := ss.trackPod(ev.Key, ev.Value)
	if len(added) == 0 {
		return nil
	}
	puts, err := ss.refPuts(ctx, added, 0)
	if err != nil {
		// The objects stay referenced: their next change will be sent.
		ss.svc.lg.Warn("cannot read objects a pod references", "pod", ev.Key, "err", err)
	}
	return puts
}
