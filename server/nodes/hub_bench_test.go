package nodes

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// BenchmarkHubFanout dispatches a stream of store events to sessions as a
// cluster binding and starting pods sees them: per pod a create, a
// binding and a status write, and the store's progress notification once
// a second, at 1,000 pods/s of simulated time. Sessions drain their
// queues every 100 pods. It reports the hub's cost and the session
// wake-ups per pod for 1 and 1,000 sessions, with progress passed on
// every second (as it was) and every progressEvery (ratios).
func BenchmarkHubFanout(b *testing.B) {
	pod := benchPod(b, "")
	bound := benchPod(b, "node-0000")
	for _, bc := range []struct {
		sessions int
		progress time.Duration
	}{{1, time.Second}, {1000, time.Second}, {1, progressEvery}, {1000, progressEvery}} {
		b.Run(fmt.Sprintf("sessions=%d/progress=%v", bc.sessions, bc.progress), func(b *testing.B) {
			sessions := bc.sessions
			h := newHub(nil, slog.New(slog.DiscardHandler), make(chan struct{}))
			h.progressEvery = bc.progress
			now := time.Unix(0, 0)
			h.now = func() time.Time { return now }
			subs := make([]*subscriber, sessions)
			for i := range subs {
				subs[i] = newSubscriber(fmt.Sprintf("node-%04d", i))
				req := subscription{sub: subs[i], reply: make(chan subscribed, 1)}
				h.add(req)
				<-req.reply
			}
			var rev int64
			event := func(typ store.EventType, value, prev []byte) {
				rev++
				h.dispatch(h.delta(store.Event{Type: typ, Key: podsPrefix + "default/p", Value: value, PrevValue: prev, Revision: rev}))
			}
			wakeups := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				event(store.EventCreate, pod, nil)
				event(store.EventUpdate, bound, pod)
				event(store.EventUpdate, bound, bound)
				now = now.Add(time.Millisecond) // 1,000 pods/s
				if i%1000 == 999 {
					rev++
					h.dispatch(h.delta(store.Event{Type: store.EventProgress, Revision: rev}))
				}
				if i%100 == 99 {
					for _, sub := range subs {
						select {
						case <-sub.ready:
							wakeups++
							sub.take()
						default:
						}
					}
				}
			}
			b.ReportMetric(float64(wakeups)/float64(b.N), "wakeups/pod")
		})
	}
}

// BenchmarkWithRevision compares putting the revision into a stored pod
// by splicing its bytes with decoding and encoding it, as for a pod stored
// as JSON by an earlier version (ratio).
func BenchmarkWithRevision(b *testing.B) {
	stored := benchPod(b, "node-0000")
	b.Run("splice", func(b *testing.B) {
		for b.Loop() {
			if _, err := withRevision(api.ObjectKind_OBJECT_KIND_POD, stored, 12345); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-encode", func(b *testing.B) {
		p := &corev1.Pod{}
		if err := registry.DecodeStored(stored, p); err != nil {
			b.Fatal(err)
		}
		asJSON, err := json.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := withRevision(api.ObjectKind_OBJECT_KIND_POD, asJSON, 12345); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchPod is a stored pod, as the API server writes it, bound to node
// unless that is empty.
func benchPod(b *testing.B, node string) []byte {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "0c6b5d6e-8a8e-4b8f-9d7a-1f1e2d3c4b5a",
			Labels: map[string]string{"app": "web"}, CreationTimestamp: metav1.Now()},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
	}
	pods, _ := registry.Lookup("pods")
	data, err := registry.EncodeStored(pods, p)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
