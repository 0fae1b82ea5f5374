package controllers

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRecorderAggregates(t *testing.T) {
	e := newEnv(t)
	rec := NewRecorder(e.client, "test-component", e.lg)
	e.run(rec.Run)
	pod := e.createPod("web", nil)
	node, err := e.client.CoreV1().Nodes().Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rec.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting %s", "app")
	}
	rec.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting %s", "other")
	rec.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node n1 status is now: NodeNotReady")

	e.eventually("events", func() error {
		list, err := e.client.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		got := map[string]int32{}
		for _, ev := range list.Items {
			if !strings.HasPrefix(ev.Name, ev.InvolvedObject.Name+".") {
				return fmt.Errorf("event name %q, want %s.<hex>", ev.Name, ev.InvolvedObject.Name)
			}
			if ev.Source.Component != "test-component" {
				return fmt.Errorf("event source %q", ev.Source.Component)
			}
			if ev.InvolvedObject.Kind == "Pod" && ev.InvolvedObject.UID != pod.UID {
				return fmt.Errorf("involved object %+v", ev.InvolvedObject)
			}
			got[ev.InvolvedObject.Kind+"/"+ev.Message] += ev.Count
			if ev.LastTimestamp.Before(&ev.FirstTimestamp) {
				return fmt.Errorf("lastTimestamp %v before firstTimestamp %v", ev.LastTimestamp, ev.FirstTimestamp)
			}
		}
		want := map[string]int32{
			"Pod/Back-off restarting app":              3,
			"Pod/Back-off restarting other":            1,
			"Node/Node n1 status is now: NodeNotReady": 1,
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("event counts = %v, want %v", got, want)
		}
		if len(list.Items) != 3 {
			return fmt.Errorf("%d events, want 3 (repeats aggregated)", len(list.Items))
		}
		return nil
	})
}
