package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEventTTLSweep(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Add(3 * time.Hour) // every event was created over 2h "ago"
	ttl := NewEventTTL(e.client, e.lg, EventTTLOptions{TTL: time.Hour, Now: func() time.Time { return now }})
	create := func(ns, name string, last time.Time) {
		t.Helper()
		_, err := e.client.CoreV1().Events(ns).Create(e.ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p"},
			Reason:         "Started", Type: corev1.EventTypeNormal, Count: 1,
			FirstTimestamp: metav1.NewTime(last.Add(-time.Minute)), LastTimestamp: metav1.NewTime(last),
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	const old = eventTTLPage + 20 // more than a page
	for i := range old {
		create("default", fmt.Sprintf("old-%d", i), time.Now())
	}
	create("kube-system", "old-elsewhere", time.Now())
	// Times stamped far ahead of the clock (a skewed or lying writer) do
	// not keep an Event forever: it ages from its creation.
	create("default", "old-stamped-ahead", now.AddDate(10, 0, 0))
	create("default", "recent", now.Add(-30*time.Minute))
	create("kube-system", "recent", now.Add(-59*time.Minute))
	create("default", "recent-slightly-ahead", now.Add(30*time.Second))

	n, err := ttl.Sweep(e.ctx)
	if err != nil {
		t.Fatalf("Sweep = %v", err)
	}
	if n != old+2 {
		t.Errorf("Sweep deleted %d events, want %d", n, old+2)
	}
	list, err := e.client.CoreV1().Events(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, ev := range list.Items {
		left = append(left, ev.Namespace+"/"+ev.Name)
	}
	if fmt.Sprint(left) != "[default/recent default/recent-slightly-ahead kube-system/recent]" {
		t.Errorf("events left = %v, want the three recent ones", left)
	}
}
