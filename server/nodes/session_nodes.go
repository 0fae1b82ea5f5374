package nodes

import (
	"bytes"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/envelope"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Sessions carry every Node, trimmed to what an agent routes by: its name,
// podCIDR and addresses. Status writes that leave those alone (readiness,
// capacity) are not sent, so a cluster of many nodes does not fan every
// node's status out to every other node.

// trimNode returns the stored Node in value reduced to its name, podCIDR
// and addresses, without resourceVersion.
func trimNode(value []byte) (*corev1.Node, error) {
	n := &corev1.Node{}
	if err := registry.DecodeStored(value, n); err != nil {
		return nil, err
	}
	return &corev1.Node{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID},
		Spec:       corev1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs},
		Status:     corev1.NodeStatus{Addresses: n.Status.Addresses},
	}, nil
}

// nodeChange turns a store event on a Node into a session change, or nil
// when nothing an agent routes by changed.
func nodeChange(ev store.Event, name string) (*api.Change, error) {
	n, err := trimNode(ev.Value)
	if err != nil {
		return nil, err
	}
	obj, err := envelope.Encode(n, "v1", "Node")
	if err != nil {
		return nil, err
	}
	action := api.Change_PUT
	switch ev.Type {
	case store.EventDelete:
		action = api.Change_DELETE
	case store.EventUpdate:
		if prev, err := trimNode(ev.PrevValue); err == nil {
			if p, err := envelope.Encode(prev, "v1", "Node"); err == nil && bytes.Equal(p, obj) {
				return nil, nil
			}
		}
	}
	n.ResourceVersion = strconv.FormatInt(ev.Revision, 10)
	if obj, err = envelope.Encode(n, "v1", "Node"); err != nil {
		return nil, err
	}
	return &api.Change{Action: action, Kind: api.ObjectKind_OBJECT_KIND_NODE, Name: name, Object: obj}, nil
}

// nodeChanges keeps the change of each Node as last built, so that the
// complete sets of many sessions decode each Node once, not once per
// session. It is safe for concurrent use.
type nodeChanges struct {
	mu      sync.Mutex               // guards changes
	changes map[string]*cachedChange // by store key
}

type cachedChange struct {
	rev    int64
	change *api.Change
}

// get returns the change putting the Node stored in kv, built once per
// revision of the key. The change is shared and must not be modified.
func (nc *nodeChanges) get(kv store.KV, name string) (*api.Change, error) {
	nc.mu.Lock()
	c, ok := nc.changes[kv.Key]
	nc.mu.Unlock()
	if ok && c.rev == kv.ModRevision {
		return c.change, nil
	}
	ch, err := nodeChange(store.Event{Type: store.EventCreate, Key: kv.Key, Value: kv.Value, Revision: kv.ModRevision}, name)
	if err != nil {
		return nil, err
	}
	nc.mu.Lock()
	if nc.changes == nil {
		nc.changes = map[string]*cachedChange{}
	}
	if cur, ok := nc.changes[kv.Key]; !ok || cur.rev < kv.ModRevision {
		nc.changes[kv.Key] = &cachedChange{rev: kv.ModRevision, change: ch}
	}
	nc.mu.Unlock()
	return ch, nil
}

// forget drops the change of a deleted Node.
func (nc *nodeChanges) forget(key string) {
	nc.mu.Lock()
	delete(nc.changes, key)
	nc.mu.Unlock()
}
