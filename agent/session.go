package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/agent/servicenet"
	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
)

// objKey names an object of a session.
type objKey struct {
	kind      api.ObjectKind
	namespace string
	name      string
}

// state is what the sessions have told the agent. Only the session
// goroutine uses it.
type state struct {
	session nodeclient.Follower
	objects map[objKey][]byte // as received
	// podObjs are the ConfigMaps, Secrets and Services, decoded; nil
	// until the first message.
	podObjs *podObjects
	// endpoints says the server sends Endpoints rather than the
	// EndpointSlices the agent asks for, as servers of earlier versions
	// do; service networking then reads them. A session carries one of
	// the two kinds, never both: its complete set tells which, and so does
	// any change of either kind after it.
	endpoints bool
}

// runSessions keeps a session open until ctx ends, reconnecting with
// backoff. Pods keep running while disconnected.
func (a *agent) runSessions(ctx context.Context) error {
	st := &state{objects: map[objKey][]byte{}}
	backoff := nodeclient.NewBackoff()
	for {
		start := time.Now()
		err := a.connect(ctx, st)
		if ctx.Err() != nil {
			return nil
		}
		backoff.Connected(start)
		wait := backoff.Next()
		if errors.Is(err, nodeclient.ErrGap) {
			wait = 0
		}
		a.lg.Warn("disconnected from the server; reconnecting", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// connect runs one session: the stream of desired state, heartbeats and
// status batches, all ended together by the first error. It returns
// after they have, so that the reporter of one connection never runs
// beside the next one's.
func (a *agent) connect(ctx context.Context, st *state) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The node report goes first: the Node must exist, with its podCIDR,
	// before the session's pods are reported on. Until the heartbeats
	// start, nothing else notices a server or a connection that stopped
	// answering, so both steps are bounded.
	rctx, rcancel := context.WithTimeout(ctx, a.callTimeout())
	err := a.rep.reportNode(rctx)
	rcancel()
	if err != nil {
		return err
	}
	stream, err := nodeclient.OpenSession(ctx, a.client, &api.SessionRequest{LastRevision: st.session.Revision(), AcceptProtobuf: true, EndpointSlices: true}, a.callTimeout())
	if err != nil {
		return err
	}
	errc := make(chan error, 3)
	msgs := make(chan *api.SessionMessage)
	wg.Go(func() { nodeclient.Receive(ctx, stream, msgs, errc) })
	wg.Go(func() { errc <- a.heartbeats(ctx) })
	wg.Go(func() { errc <- a.rep.run(ctx) })
	for {
		select {
		case m := <-msgs:
			if err := a.apply(st, m); err != nil {
				return err
			}
		case err := <-errc:
			return err
		}
	}
}

// apply brings st up to date with m and hands the pods and the objects
// they read to the manager.
func (a *agent) apply(st *state, m *api.SessionMessage) error {
	complete, err := st.session.Check(m)
	if err != nil {
		if errors.Is(err, nodeclient.ErrGap) {
			a.lg.Warn("session revision gap; asking for a complete set", "err", err)
		}
		return err
	}
	if complete {
		st.objects, st.podObjs, st.endpoints = map[objKey][]byte{}, newPodObjects(), false
	}
	podsChanged := complete
	netChanged, objsChanged := podsChanged, podsChanged
	if st.podObjs == nil {
		st.podObjs = newPodObjects()
	}
	for _, c := range m.GetChanges() {
		k := objKey{kind: c.GetKind(), namespace: c.GetNamespace(), name: c.GetName()}
		if c.GetAction() == api.Change_DELETE {
			delete(st.objects, k)
		} else {
			st.objects[k] = c.GetObject()
		}
		if isPodObjectKind(k.kind) {
			st.podObjs.apply(c, a.lg)
			objsChanged = true
		}
		podsChanged = podsChanged || k.kind == api.ObjectKind_OBJECT_KIND_POD
		netChanged = netChanged || isNetKind(k.kind)
		switch k.kind {
		case api.ObjectKind_OBJECT_KIND_ENDPOINTS:
			st.endpoints = true
		case api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE:
			st.endpoints = false
		}
	}
	st.session.Applied(m)
	// Objects first: a pod that arrives with its ConfigMaps must find them.
	if objsChanged && a.objs != nil {
		a.objs.SetObjects(st.podObjs.objects())
	}
	if podsChanged {
		a.pods.SetPods(st.pods(a.lg))
	}
	if netChanged && a.net != nil {
		a.net.Update(st.netObjects())
	}
	a.lg.Debug("session applied", "type", m.GetType(), "revision", st.session.Revision(), "changes", len(m.GetChanges()))
	return nil
}

// pods decodes the pods of st.
func (st *state) pods(lg *slog.Logger) []*corev1.Pod {
	var out []*corev1.Pod
	for k, data := range st.objects {
		if k.kind != api.ObjectKind_OBJECT_KIND_POD {
			continue
		}
		p := &corev1.Pod{}
		if err := api.DecodeObject(data, p); err != nil {
			lg.Warn("undecodable pod from the server", "pod", k.namespace+"/"+k.name, "err", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// callTimeout bounds each call that opens a connection's session.
func (a *agent) callTimeout() time.Duration { return 3 * a.cfg.HeartbeatInterval }

// heartbeats tells the server the node is alive every HeartbeatInterval,
// starting at once.
func (a *agent) heartbeats(ctx context.Context) error {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, a.cfg.HeartbeatInterval)
		_, err := a.client.Heartbeat(hctx, &api.HeartbeatRequest{Ready: true})
		cancel()
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// netKinds are the kinds service networking reads, as it names them.
var netKinds = map[api.ObjectKind]servicenet.Kind{
	api.ObjectKind_OBJECT_KIND_SERVICE:       servicenet.KindService,
	api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE: servicenet.KindEndpointSlice,
	api.ObjectKind_OBJECT_KIND_NODE:          servicenet.KindNode,
	api.ObjectKind_OBJECT_KIND_ENDPOINTS:     servicenet.KindEndpoints,
}

func isNetKind(k api.ObjectKind) bool {
	_, ok := netKinds[k]
	return ok
}

// netObjects copies the services, nodes and EndpointSlices (or, from a
// server that sends them instead, Endpoints) of st for service
// networking.
func (st *state) netObjects() servicenet.Objects {
	skip := api.ObjectKind_OBJECT_KIND_ENDPOINTS
	if st.endpoints {
		skip = api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE
	}
	out := servicenet.Objects{}
	for k, v := range st.objects {
		if kind, ok := netKinds[k.kind]; ok && k.kind != skip {
			out[servicenet.Key{Kind: kind, Namespace: k.namespace, Name: k.name}] = v
		}
	}
	return out
}
