package coord

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/store/storetest"
)

const testTimeout = 20 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderWork counts how many electors run their work at once.
type leaderWork struct {
	running, most atomic.Int32
	mu            sync.Mutex
	who           []string
}

func (w *leaderWork) fn(name string) Leading {
	return func(ctx context.Context) error {
		n := w.running.Add(1)
		for {
			m := w.most.Load()
			if n <= m || w.most.CompareAndSwap(m, n) {
				break
			}
		}
		w.mu.Lock()
		w.who = append(w.who, name)
		w.mu.Unlock()
		<-ctx.Done()
		w.running.Add(-1)
		return nil
	}
}

func (w *leaderWork) leaders() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.who)
}

func TestElectorOneLeaderAtATime(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	work := &leaderWork{}
	var (
		electors [2]*elector
		cancels  [2]context.CancelFunc
		done     [2]chan error
	)
	for i, name := range []string{"a", "b"} {
		electors[i] = newElector(storetest.EtcdClient(t, endpoint), "/test/leader", name, testLogger(t))
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i], done[i] = cancel, make(chan error, 1)
		go func() { done[i] <- electors[i].Lead(ctx, work.fn(name)) }()
		t.Cleanup(func() { cancel(); <-done[i] })
		if i == 0 {
			waitUntil(t, "a to lead", electors[0].Leading)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if electors[1].Leading() {
		t.Fatalf("b leads while a does")
	}
	// a loses its lease (as when etcd expires it): its work stops and b
	// takes over.
	leases, err := cli.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(context.Background(), "/test/leader", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("election key: %v, %d keys", err, len(resp.Kvs))
	}
	aLease := clientv3.LeaseID(resp.Kvs[0].Lease)
	if !slices.ContainsFunc(leases.Leases, func(l clientv3.LeaseStatus) bool { return l.ID == aLease }) {
		t.Fatalf("a's lease %x not among %v", aLease, leases.Leases)
	}
	if _, err := cli.Revoke(context.Background(), aLease); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b to lead after a lost its lease", electors[1].Leading)
	waitUntil(t, "a to stop leading", func() bool { return !electors[0].Leading() })
	// Revocation reaches both at once, so their work may overlap for
	// moments; handing over normally must not.
	work.most.Store(work.running.Load())
	// a campaigns again and waits behind b.
	time.Sleep(300 * time.Millisecond)
	if electors[0].Leading() {
		t.Errorf("a leads again while b does")
	}
	// b stops: a takes over without waiting for b's lease to expire.
	stopped := time.Now()
	cancels[1]()
	if err := <-done[1]; err != nil {
		t.Errorf("b's Lead = %v", err)
	}
	done[1] <- nil
	waitUntil(t, "a to lead after b stopped", electors[0].Leading)
	if d := time.Since(stopped); d >= leaderTTL*time.Second {
		t.Errorf("a took over %v after b stopped, not before b's lease could expire", d)
	}
	if got := work.most.Load(); got != 1 {
		t.Errorf("at most %d electors worked at once, want 1", got)
	}
	if got, want := work.leaders(), []string{"a", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("leaders in turn = %v, want %v", got, want)
	}
}

func TestSingleAlwaysLeads(t *testing.T) {
	e := NewSingle("solo", testLogger(t))
	boom := errors.New("boom")
	if err := e.Lead(context.Background(), func(ctx context.Context) error {
		if !e.Leading() {
			t.Errorf("not leading while its work runs")
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("Lead = %v, want %v", err, boom)
	}
}

// localOnly is one server's local heartbeats.
type localOnly map[string]time.Time

func (l localOnly) LocalHeartbeats() map[string]time.Time { return l }

func TestMembership(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	sets := [2]*nodes.ServerSet{nodes.NewServerSet("10.0.0.1:6443"), nodes.NewServerSet("10.0.0.2:6443")}
	beat := time.Now().Round(time.Millisecond)
	local := [2]localOnly{{"n1": beat}, {}}
	var ms [2]*membership
	var cancels [2]context.CancelFunc
	for i := range ms {
		ms[i] = newMembership(storetest.EtcdClient(t, endpoint), "/test", sets[i].Addresses()[0], sets[i], 50*time.Millisecond, testLogger(t))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { ms[i].Run(ctx, local[i]); close(done) }()
		cancels[i] = func() { cancel(); <-done }
		t.Cleanup(cancels[i])
	}
	both := []string{"10.0.0.1:6443", "10.0.0.2:6443"}
	waitUntil(t, "both servers listed on both", func() bool {
		return slices.Equal(sets[0].Addresses(), both) && slices.Equal(sets[1].Addresses(), both)
	})
	waitUntil(t, "n1's heartbeat published to the second server", func() bool {
		got, ok := ms[1].LastHeartbeat("n1")
		return ok && got.Equal(beat)
	})
	if h, ok := ms[1].Holder("n1"); !ok || h != "10.0.0.1:6443" {
		t.Errorf("Holder(n1) = %q, %v; want 10.0.0.1:6443", h, ok)
	}
	// The first server stops: it leaves the list, and its records go.
	cancels[0]()
	waitUntil(t, "the stopped server to leave the list", func() bool {
		return slices.Equal(sets[1].Addresses(), []string{"10.0.0.2:6443"})
	})
	waitUntil(t, "its heartbeat records to go", func() bool {
		_, ok := ms[1].Holder("n1")
		return !ok
	})
	// The node's last heartbeat is remembered: it ages from there.
	if got, ok := ms[1].LastHeartbeat("n1"); !ok || !got.Equal(beat) {
		t.Errorf("LastHeartbeat(n1) after its record went = %v, %v; want %v", got, ok, beat)
	}
}

func TestMergeBeatsKeepsNewest(t *testing.T) {
	m := newMembership(nil, "/test", "10.0.0.1:6443", nodes.NewServerSet(), time.Second, testLogger(t))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.mergeBeats(map[string]peerBeat{"n1": {Server: "a", Time: t0}, "n2": {Server: "a", Time: t0}}, t0)
	m.mergeBeats(map[string]peerBeat{"n2": {Server: "b", Time: t0.Add(time.Second)}}, t0.Add(time.Second))
	if got, ok := m.LastHeartbeat("n1"); !ok || !got.Equal(t0) {
		t.Errorf("LastHeartbeat(n1) = %v, %v; want %v kept after its record went", got, ok, t0)
	}
	if h, ok := m.Holder("n1"); ok {
		t.Errorf("Holder(n1) = %q, want none once its record went", h)
	}
	if h, ok := m.Holder("n2"); !ok || h != "b" {
		t.Errorf("Holder(n2) = %q, %v; want b", h, ok)
	}
	m.mergeBeats(nil, t0.Add(forgetAfter+time.Minute))
	if _, ok := m.LastHeartbeat("n1"); ok {
		t.Errorf("LastHeartbeat(n1) still known %v after its record went", forgetAfter)
	}
}

// What publish remembers follows the nodes heard here: a node gone from
// them (its Node deleted) is forgotten.
func TestPublishForgetsNodes(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	m := newMembership(cli, "/test", "10.0.0.1:6443", nodes.NewServerSet(), time.Second, testLogger(t))
	ctx := context.Background()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]time.Time{}
	now := time.Now()
	m.publish(ctx, lease.ID, map[string]time.Time{"n1": now, "n2": now}, published)
	m.publish(ctx, lease.ID, map[string]time.Time{"n2": now.Add(2 * time.Second)}, published)
	if _, ok := published["n1"]; ok || len(published) != 1 || !published["n2"].Equal(now.Add(2*time.Second)) {
		t.Errorf("published = %v, want only n2 at its second heartbeat", published)
	}
	resp, err := cli.Get(ctx, "/test"+heartbeatsDir+"n2")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("n2's record: %v, %v", resp, err)
	}
}

// A node that moved to another server keeps its record there: this
// server, publishing again after a new term, does not write the older
// heartbeat it still has.
func TestPublishLeavesMovedNodes(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	m := newMembership(cli, "/test", "10.0.0.1:6443", nodes.NewServerSet(), time.Second, testLogger(t))
	ctx := context.Background()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Round(time.Millisecond)
	m.mergeBeats(map[string]peerBeat{"n1": {Server: "10.0.0.2:6443", Time: t0.Add(time.Second)}}, t0)
	record := func() string {
		t.Helper()
		resp, err := cli.Get(ctx, "/test"+heartbeatsDir+"n1")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	m.publish(ctx, lease.ID, map[string]time.Time{"n1": t0}, map[string]time.Time{})
	if got := record(); got != "" {
		t.Errorf("n1's record = %s, want none: another server heard n1 later", got)
	}
	// Heard here again, later: the record is this server's.
	m.publish(ctx, lease.ID, map[string]time.Time{"n1": t0.Add(2 * time.Second)}, map[string]time.Time{})
	if got := record(); !strings.Contains(got, `"server":"10.0.0.1:6443"`) {
		t.Errorf("n1's record = %s, want this server's", got)
	}
}
