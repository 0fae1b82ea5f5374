package nodes_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/nodes"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestNodeLease checks that a node's heartbeats keep its Lease as the
// kubelet would, one renewal per interval at most, and that a silent node's
// lease is left to expire.
func TestNodeLease(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e := newEnv(t, envOptions{configure: func(c *nodes.Config) { c.Now, c.NodeLeaseRenewInterval = clock.Now, 10*time.Second }})
	c, _ := e.register("n1")
	st, _ := json.Marshal(corev1.NodeStatus{})
	if _, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{Status: st}}); err != nil {
		t.Fatal(err)
	}
	node, err := e.admin.Nodes().Get(ctxT(t), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := coordinationclient.NewForConfig(e.api.LoopbackConfig(auth.AdminUser))
	if err != nil {
		t.Fatal(err)
	}
	leases := cc.Leases(nodes.NodeLeaseNamespace)
	beat := func() time.Time {
		t.Helper()
		if _, err := c.Heartbeat(ctxT(t), &api.HeartbeatRequest{Ready: true}); err != nil {
			t.Fatal(err)
		}
		return clock.Now()
	}
	waitRenew := func(want time.Time) *coordinationv1.Lease {
		t.Helper()
		var last error
		for deadline := time.Now().Add(testTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			l, err := leases.Get(ctxT(t), "n1", metav1.GetOptions{})
			switch {
			case err != nil:
				last = err
			case l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(want):
				last = fmt.Errorf("renewTime %v, want %v", l.Spec.RenewTime, want)
			default:
				return l
			}
		}
		t.Fatalf("lease n1: %v", last)
		return nil
	}

	first := beat()
	l := waitRenew(first)
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "n1" || l.Spec.LeaseDurationSeconds == nil ||
		*l.Spec.LeaseDurationSeconds != nodes.NodeLeaseDurationSeconds {
		t.Errorf("lease spec = %+v, want holder n1 and 40 s", l.Spec)
	}
	if refs := l.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].UID != node.UID {
		t.Errorf("lease owners = %+v, want the Node n1 (uid %s)", refs, node.UID)
	}

	// Every write of the lease from here on, in order.
	w, err := leases.Watch(ctxT(t), metav1.ListOptions{ResourceVersion: l.ResourceVersion, FieldSelector: "metadata.name=n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	nextRenewal := func() time.Time {
		t.Helper()
		select {
		case ev := <-w.ResultChan():
			l, ok := ev.Object.(*coordinationv1.Lease)
			if !ok || l.Spec.RenewTime == nil {
				t.Fatalf("watch event %s %T, want a renewed lease", ev.Type, ev.Object)
			}
			return l.Spec.RenewTime.Time
		case <-time.After(testTimeout):
			t.Fatal("no lease write")
		}
		return time.Time{}
	}

	// A heartbeat within the interval does not renew; the next one after
	// the interval does.
	clock.Advance(5 * time.Second)
	beat()
	clock.Advance(6 * time.Second)
	second := beat()
	if got := nextRenewal(); !got.Equal(second) {
		t.Errorf("first renewal after %v has renewTime %v, want the heartbeat at %v", first, got, second)
	}

	// A heartbeat not yet renewed, then silence past the lease duration:
	// that heartbeat is never written (the lease expires), the node's next
	// heartbeat is.
	clock.Advance(4 * time.Second)
	beat()
	clock.Advance(nodes.NodeLeaseDurationSeconds*time.Second + 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // a renewal round runs on the silence
	after := beat()
	if got := nextRenewal(); !got.Equal(after) {
		t.Errorf("renewal after silence has renewTime %v, want the heartbeat at %v", got, after)
	}
}
