package nodes_test

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/nodes"
)

func TestWatchServers(t *testing.T) {
	set := nodes.NewServerSet("10.0.0.1:6443")
	e := newEnv(t, envOptions{configure: func(c *nodes.Config) { c.Servers = set }})
	c, cfg := e.register("n1")
	if want := []string{"10.0.0.1:6443"}; !slices.Equal(cfg.GetServerAddresses(), want) {
		t.Errorf("Register config server addresses = %v, want %v", cfg.GetServerAddresses(), want)
	}
	stream, err := c.WatchServers(ctxT(t), &api.WatchServersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next := func() []string {
		t.Helper()
		l, err := stream.Recv()
		if err != nil {
			t.Fatalf("WatchServers Recv = %v", err)
		}
		return l.GetAddresses()
	}
	if got, want := next(), []string{"10.0.0.1:6443"}; !slices.Equal(got, want) {
		t.Errorf("first list = %v, want %v", got, want)
	}
	if set.Set([]string{"10.0.0.1:6443"}) {
		t.Errorf("Set(same list) reported a change")
	}
	set.Set([]string{"10.0.0.2:6443", "10.0.0.1:6443"})
	if got, want := next(), []string{"10.0.0.1:6443", "10.0.0.2:6443"}; !slices.Equal(got, want) {
		t.Errorf("list after a change = %v, want %v", got, want)
	}
	// Without a node certificate the stream is refused.
	anon, err := e.dial(nil).WatchServers(ctxT(t), &api.WatchServersRequest{})
	if err == nil {
		_, err = anon.Recv()
	}
	if err == nil {
		t.Errorf("WatchServers without a node certificate succeeded")
	}
}

// peerBeats stands for the other servers' published heartbeats.
type peerBeats struct {
	mu    sync.Mutex
	heard map[string]bool // node → heard just now
}

func (p *peerBeats) LastHeartbeat(node string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.heard[node] {
		return time.Now(), true
	}
	return time.Time{}, false
}

func (p *peerBeats) set(node string, heard bool) {
	p.mu.Lock()
	p.heard[node] = heard
	p.mu.Unlock()
}

// A node heard by another server stays Ready; only the leader marks a
// silent node Unknown.
func TestSilentNodesWithPeers(t *testing.T) {
	grace := 200 * time.Millisecond
	peers := &peerBeats{heard: map[string]bool{}}
	var leading atomic.Bool
	leading.Store(true)
	e := newEnv(t, envOptions{grace: grace, configure: func(c *nodes.Config) {
		c.Peers = peers
		c.Leading = leading.Load
	}})
	c, _ := e.register("n1")
	st, _ := json.Marshal(corev1.NodeStatus{})
	if _, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{Status: st}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctxT(t), &api.HeartbeatRequest{Ready: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.svc.LocalHeartbeats()["n1"]; !ok {
		t.Errorf("LocalHeartbeats lacks n1 after its heartbeat")
	}
	// The node moves to another server, which hears it.
	peers.set("n1", true)
	time.Sleep(5 * grace)
	if ready, _, _ := readyOf(t, e, "n1"); ready != corev1.ConditionTrue {
		t.Fatalf("node heard by a peer: Ready=%s, want True", ready)
	}
	if last, ok := e.svc.LastHeartbeat("n1"); !ok || time.Since(last) > grace {
		t.Errorf("LastHeartbeat(n1) = %v, %v; want the peer's recent one", last, ok)
	}
	// Silent everywhere, but this server does not lead.
	peers.set("n1", false)
	leading.Store(false)
	time.Sleep(5 * grace)
	if ready, _, _ := readyOf(t, e, "n1"); ready != corev1.ConditionTrue {
		t.Fatalf("a server that does not lead marked the node Ready=%s", ready)
	}
	leading.Store(true)
	deadline := time.Now().Add(testTimeout)
	for {
		if ready, _, _ := readyOf(t, e, "n1"); ready == corev1.ConditionUnknown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader did not mark the silent node Unknown")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node that moves to another server after the leader marked it Unknown
// is Ready again with its first heartbeat there, though that server last
// saw it Ready.
func TestFirstHeartbeatOnAnotherServer(t *testing.T) {
	leader := newEnv(t, envOptions{grace: 200 * time.Millisecond})
	c, _ := leader.register("n1")
	st, _ := json.Marshal(corev1.NodeStatus{})
	if _, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{Status: st}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctxT(t), &api.HeartbeatRequest{Ready: true}); err != nil {
		t.Fatal(err)
	}
	other := newEnv(t, envOptions{st: leader.st, ca: leader.ca, grace: time.Hour})
	deadline := time.Now().Add(testTimeout)
	for {
		if ready, _, _ := readyOf(t, leader, "n1"); ready == corev1.ConditionUnknown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the silent node was not marked Unknown")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c2, _ := other.register("n1")
	if _, err := c2.Heartbeat(ctxT(t), &api.HeartbeatRequest{Ready: true}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(testTimeout)
	for {
		if ready, _, _ := readyOf(t, other, "n1"); ready == corev1.ConditionTrue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after its first heartbeat on another server the node is not Ready again")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
