package controllers

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/record"
)

func TestRecorderAggregates(t *testing.T) {
	e := newEnv(t)
	rec := record.New(e.client, "test-component", e.lg, record.Options{})
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

// With several writers, repeats recorded concurrently still land on one
// Event per distinct event, with every occurrence counted.
func TestRecorderAggregatesWithSeveralWriters(t *testing.T) {
	e := newEnv(t)
	rec := record.New(e.client, "test-component", e.lg, record.Options{Writers: 4, QueueSize: 4000})
	pod := e.createPod("web", nil)
	const distinct, repeats, goroutines = 12, 30, 3
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range repeats {
				for m := range distinct {
					rec.Eventf(pod, corev1.EventTypeNormal, "Tick", "message %d", (m+g+i)%distinct)
				}
			}
		})
	}
	wg.Wait() // all queued before Run: nothing may be dropped
	e.run(rec.Run)
	e.eventually("aggregated events", func() error {
		list, err := e.client.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		got := map[string]int32{}
		for _, ev := range list.Items {
			got[ev.Message] += ev.Count
		}
		for m := range distinct {
			msg := fmt.Sprintf("message %d", m)
			if got[msg] != repeats*goroutines {
				return fmt.Errorf("count of %q = %d, want %d", msg, got[msg], repeats*goroutines)
			}
		}
		if len(list.Items) != distinct {
			return fmt.Errorf("%d events, want %d (one per distinct message)", len(list.Items), distinct)
		}
		return nil
	})
}

// Record keeps what its caller set (field path, host, count, timestamps)
// and adds a repeat's count to the Event it aggregates into.
func TestRecorderRecordPrebuilt(t *testing.T) {
	e := newEnv(t)
	rec := record.New(e.client, "unused", e.lg, record.Options{})
	e.run(rec.Run)
	pod := e.createPod("web", nil)
	first := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	last := metav1.NewTime(first.Add(time.Minute))
	mk := func(count int32, at metav1.Time) *corev1.Event {
		return &corev1.Event{
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
				UID: pod.UID, FieldPath: "spec.containers{app}"},
			Type: corev1.EventTypeWarning, Reason: "BackOff", Message: "Back-off restarting failed container app",
			Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, Count: count,
			FirstTimestamp: first, LastTimestamp: at,
		}
	}
	rec.Record(mk(3, first))
	rec.Record(mk(2, last))
	e.eventually("recorded event", func() error {
		list, err := e.client.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d events, want 1", len(list.Items))
		}
		ev := list.Items[0]
		switch {
		case ev.Count != 5:
			return fmt.Errorf("count = %d, want 5", ev.Count)
		case ev.InvolvedObject.FieldPath != "spec.containers{app}":
			return fmt.Errorf("fieldPath = %q", ev.InvolvedObject.FieldPath)
		case ev.Source != (corev1.EventSource{Component: "kubelet", Host: "node-1"}):
			return fmt.Errorf("source = %+v", ev.Source)
		case !ev.FirstTimestamp.Equal(&first) || !ev.LastTimestamp.Equal(&last):
			return fmt.Errorf("timestamps %v..%v, want %v..%v", ev.FirstTimestamp, ev.LastTimestamp, first, last)
		case ev.ReportingController != "kubelet" || ev.ReportingInstance != "node-1":
			return fmt.Errorf("reporting %q/%q", ev.ReportingController, ev.ReportingInstance)
		}
		return nil
	})
}
