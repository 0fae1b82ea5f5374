package nodes

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// startHub runs a hub on a fresh store until the test ends.
func startHub(t *testing.T) (*hub, store.Store) {
	t.Helper()
	st := storetest.New(t)
	done := make(chan struct{})
	h := newHub(st, slog.New(slog.NewTextHandler(t.Output(), nil)), done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("hub did not stop")
		}
	})
	return h, st
}

// next waits for sub's next non-progress deltas.
func next(t *testing.T, sub *subscriber) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-sub.ready:
			ds, dropped := sub.take()
			if dropped {
				t.Fatalf("subscriber of %s dropped", sub.node)
			}
			var keys []string
			for _, d := range ds {
				if d.ev.Type != store.EventProgress {
					keys = append(keys, d.ev.Key)
				}
			}
			if len(keys) > 0 {
				return keys
			}
		case <-deadline:
			t.Fatalf("no delta for %s", sub.node)
		}
	}
}

func TestHubRoutesPodsToTheirNodes(t *testing.T) {
	h, st := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := st.Create(ctx, "/registry/other", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	n1, n2 := newSubscriber("n1"), newSubscriber("n2")
	for _, sub := range []*subscriber{n1, n2} {
		if _, err := h.subscribe(ctx, sub, 0); err != nil {
			t.Fatal(err)
		}
	}
	pod := podsPrefix + "default/a"
	if _, err := st.Create(ctx, pod, []byte(`{"metadata":{"name":"a","namespace":"default"},"spec":{"nodeName":"n1"}}`)); err != nil {
		t.Fatal(err)
	}
	svc := servicesPrefix + "default/web"
	if _, err := st.Create(ctx, svc, []byte(`{"metadata":{"name":"web","namespace":"default"}}`)); err != nil {
		t.Fatal(err)
	}
	if got := next(t, n1); len(got) == 0 || got[0] != pod {
		t.Errorf("n1 got %q first, want %q", got, pod)
	}
	if got := next(t, n2); len(got) != 1 || got[0] != svc {
		t.Errorf("n2 got %q, want only %q", got, svc)
	}

	// Resuming from before the pod replays it to n1 only.
	rev, err := st.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again := newSubscriber("n1")
	if _, err := h.subscribe(ctx, again, rev-2); err != nil {
		t.Fatalf("subscribe(after %d) = %v", rev-2, err)
	}
	if got := next(t, again); len(got) != 2 || got[0] != pod || got[1] != svc {
		t.Errorf("replay to n1 = %q, want [%q %q]", got, pod, svc)
	}
}

func TestHubDropsSlowSubscriber(t *testing.T) {
	h, st := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slow := newSubscriber("n1")
	if _, err := h.subscribe(ctx, slow, 0); err != nil {
		t.Fatal(err)
	}
	for range maxQueued {
		slow.push(&delta{})
	}
	if _, err := st.Create(ctx, servicesPrefix+"default/web", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		slow.mu.Lock()
		dropped := slow.dropped
		slow.mu.Unlock()
		if dropped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a full subscriber was not dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Others keep following.
	other := newSubscriber("n2")
	if _, err := h.subscribe(ctx, other, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, servicesPrefix+"default/db", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := next(t, other); len(got) != 1 {
		t.Errorf("after a drop, n2 got %q, want one service", got)
	}
}

func TestNodeChangesBuiltOncePerRevision(t *testing.T) {
	var nc nodeChanges
	kv := store.KV{Key: nodesPrefix + "n1", Value: []byte(`{"metadata":{"name":"n1"},"spec":{"podCIDR":"10.42.0.0/24"}}`), ModRevision: 5}
	a, err := nc.get(kv, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := nc.get(kv, "n1"); b != a {
		t.Errorf("get at the same revision built a new change")
	}
	kv.ModRevision = 6
	if c, _ := nc.get(kv, "n1"); c == a {
		t.Errorf("get at a new revision returned the old change")
	}
}

func TestHubPassesProgressOnAtMostEveryProgressEvery(t *testing.T) {
	h := newHub(nil, slog.New(slog.DiscardHandler), make(chan struct{}))
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	subs := []*subscriber{newSubscriber("n1"), newSubscriber("n2")}
	for _, sub := range subs {
		req := subscription{sub: sub, reply: make(chan subscribed, 1)}
		h.add(req)
		if r := <-req.reply; r.err != nil {
			t.Fatal(r.err)
		}
	}
	progress := func(rev int64) { h.dispatch(&delta{ev: store.Event{Type: store.EventProgress, Revision: rev}}) }
	tests := []struct {
		name    string
		advance time.Duration
		rev     int64
		passed  bool
	}{
		{"first", 0, 10, true},
		{"a second later", time.Second, 11, false},
		{"just before progressEvery", progressEvery - 2*time.Second, 12, false},
		{"progressEvery after the first", time.Second, 13, true},
		{"right after", time.Millisecond, 14, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = now.Add(tc.advance)
			progress(tc.rev)
			for _, sub := range subs {
				ds, _ := sub.take()
				if got := len(ds) == 1 && ds[0].ev.Revision == tc.rev; got != tc.passed {
					t.Errorf("%s got %d deltas, want progress at %d passed on = %v", sub.node, len(ds), tc.rev, tc.passed)
				}
			}
			if h.rev != tc.rev {
				t.Errorf("hub revision = %d, want %d", h.rev, tc.rev)
			}
		})
	}
}

// The hub follows each pod's node, from values in either stored form:
// protobuf, or the JSON of earlier versions.
func TestHubPodNodes(t *testing.T) {
	pods, _ := registry.Lookup("pods")
	for _, form := range []struct {
		name   string
		encode func(*corev1.Pod) ([]byte, error)
	}{
		{"protobuf", func(p *corev1.Pod) ([]byte, error) { return registry.EncodeStored(pods, p) }},
		{"JSON", func(p *corev1.Pod) ([]byte, error) { return json.Marshal(p) }},
	} {
		t.Run(form.name, func(t *testing.T) {
			h := newHub(nil, slog.New(slog.DiscardHandler), make(chan struct{}))
			pod := func(node string) []byte {
				data, err := form.encode(&corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{"note": `"nodeName":"n9"`}},
					Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				return data
			}
			const key, other = podsPrefix + "default/p", podsPrefix + "default/q"
			steps := []struct {
				name             string
				ev               store.Event
				wantOld, wantNew string
			}{
				{"created unbound", store.Event{Type: store.EventCreate, Key: key, Value: pod("")}, "", ""},
				{"bound", store.Event{Type: store.EventUpdate, Key: key, Value: pod("n1"), PrevValue: pod("")}, "", "n1"},
				{"status", store.Event{Type: store.EventUpdate, Key: key, Value: pod("n1"), PrevValue: pod("n1")}, "n1", "n1"},
				// Not possible through the API, but a node must hear of it.
				{"moved", store.Event{Type: store.EventUpdate, Key: key, Value: pod("n2"), PrevValue: pod("n1")}, "n1", "n2"},
				{"deleted", store.Event{Type: store.EventDelete, Key: key, Value: pod("n2")}, "n2", "n2"},
				{"recreated bound", store.Event{Type: store.EventCreate, Key: key, Value: pod("n3")}, "n3", "n3"},
				// A pod created before the watch began: its old value is decoded.
				{"first seen as an update", store.Event{Type: store.EventUpdate, Key: other, Value: pod("n1"), PrevValue: pod("n4")}, "n4", "n1"},
				{"first seen as a delete", store.Event{Type: store.EventDelete, Key: podsPrefix + "default/r", Value: pod("n5")}, "n5", "n5"},
			}
			for _, s := range steps {
				if old, cur := h.podNodes(s.ev); old != s.wantOld || cur != s.wantNew {
					t.Errorf("%s: podNodes = %q, %q; want %q, %q", s.name, old, cur, s.wantOld, s.wantNew)
				}
			}
			if _, ok := h.nodeOf[podsPrefix+"default/r"]; ok || len(h.nodeOf) != 2 {
				t.Errorf("nodes kept = %v, want only the two pods that exist", h.nodeOf)
			}
		})
	}
}

// TestHubBoundsBytes checks that the replay buffer and a session's queue
// hold large objects only up to their byte limits.
func TestHubBoundsBytes(t *testing.T) {
	h := newHub(storetest.New(t), slog.New(slog.DiscardHandler), nil)
	sub := newSubscriber("n1")
	value := make([]byte, 1<<20)
	pushed := 0
	for rev := int64(1); rev <= 200; rev++ {
		d := (&delta{ev: store.Event{Type: store.EventUpdate, Key: podsPrefix + "default/big", Value: value, Revision: rev}}).weigh()
		h.keep(d)
		held := 0
		for _, d := range h.replay {
			held += len(d.ev.Value)
		}
		if held > replayBytes {
			t.Fatalf("after %d deltas the replay buffer holds %d bytes, want at most %d", rev, held, replayBytes)
		}
		if sub.push(d) {
			pushed++
		}
	}
	if h.covered == 0 || h.replay[len(h.replay)-1].ev.Revision != 200 {
		t.Errorf("replay covers from %d to %d, want past 0 to 200", h.covered, h.replay[len(h.replay)-1].ev.Revision)
	}
	if pushed*len(value) > maxQueuedBytes {
		t.Errorf("a session that does not take its deltas queued %d of 1 MiB, want at most %d bytes", pushed, maxQueuedBytes)
	}
}
