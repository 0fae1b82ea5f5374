package apiserver

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

func newEventV1(name string) *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: name, Namespace: "default"},
		EventTime:           metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)),
		ReportingController: "example.com/controller",
		ReportingInstance:   "controller-1",
		Action:              "Scale",
		Reason:              "Scaled",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: types.UID("u1")},
		Related:             &corev1.ObjectReference{Kind: "Node", Name: "n1"},
		Note:                "scaled to 3",
		Type:                corev1.EventTypeNormal,
		Series:              &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC))},
		DeprecatedSource:    corev1.EventSource{Component: "old", Host: "h1"},
		DeprecatedCount:     7,
	}
}

// TestEventsV1RoundTrip writes events through each API and reads them
// through the other, in JSON and protobuf.
func TestEventsV1RoundTrip(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	for _, c := range []struct {
		name   string
		client kubernetes.Interface
	}{{"protobuf", ts.client}, {"json", ts.jsonClient(t)}} {
		t.Run(c.name, func(t *testing.T) {
			v1 := c.client.EventsV1().Events("default")
			core := c.client.CoreV1().Events("default")
			in := newEventV1("from-v1-" + c.name)
			created, err := v1.Create(ctx, in, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create through events.k8s.io: %v", err)
			}
			got, err := core.Get(ctx, in.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.InvolvedObject != in.Regarding || got.Message != in.Note || got.ReportingController != in.ReportingController ||
				got.ReportingInstance != in.ReportingInstance || got.Action != in.Action || got.Related == nil || *got.Related != *in.Related ||
				got.Series == nil || got.Series.Count != 2 || got.Source != in.DeprecatedSource || got.Count != 7 ||
				got.ResourceVersion != created.ResourceVersion {
				t.Errorf("core view of an events.k8s.io event = %+v", got)
			}
			back, err := v1.Get(ctx, in.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := in.DeepCopy()
			want.ObjectMeta = back.ObjectMeta
			want.TypeMeta = back.TypeMeta
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("events.k8s.io read back (-want +got):\n%s", diff)
			}

			old := &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "from-core-" + c.name, Namespace: "default"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
				Reason:         "Started", Message: "started container", Type: corev1.EventTypeNormal,
				Source: corev1.EventSource{Component: "kubelet", Host: "n1"}, Count: 3,
			}
			if _, err := core.Create(ctx, old, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			ev, err := v1.Get(ctx, old.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Regarding != old.InvolvedObject || ev.Note != old.Message || ev.DeprecatedSource != old.Source ||
				ev.DeprecatedCount != 3 || ev.DeprecatedFirstTimestamp.IsZero() || ev.APIVersion != "" && ev.APIVersion != "events.k8s.io/v1" {
				t.Errorf("events.k8s.io view of a core event = %+v", ev)
			}
		})
	}
	list, err := ts.client.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 4 {
		t.Fatalf("events.k8s.io list = %v, %v; want 4 events", list, err)
	}
}

// TestEventsV1Watch checks that an events.k8s.io watch shows a core write
// converted, for JSON and protobuf watchers alike, while a core watcher of
// the same key sees the core object.
func TestEventsV1Watch(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	var watchers []watch.Interface
	for _, c := range []kubernetes.Interface{ts.client, ts.jsonClient(t)} {
		w, err := c.EventsV1().Events("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watchers = append(watchers, w)
	}
	cw, err := ts.client.CoreV1().Events("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Stop()
	if _, err := ts.client.CoreV1().Events("default").Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e1", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
		Reason:         "Pulled", Message: "pulled image",
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, w := range watchers {
		obj := nextWatchObject(t, w)
		ev, ok := obj.(*eventsv1.Event)
		if !ok || ev.Note != "pulled image" || ev.Regarding.Name != "web" {
			t.Errorf("watcher %d: event %T %+v, want the events.k8s.io form", i, obj, obj)
		}
	}
	if ev, ok := nextWatchObject(t, cw).(*corev1.Event); !ok || ev.Message != "pulled image" {
		t.Errorf("core watcher: %+v, want the core form", ev)
	}
}

func nextWatchObject(t *testing.T, w watch.Interface) any {
	t.Helper()
	select {
	case e := <-w.ResultChan():
		return e.Object
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return nil
}

// TestEventsV1Invalid checks events.k8s.io's own rules: 422 naming the
// field, nothing stored.
func TestEventsV1Invalid(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	v1 := ts.client.EventsV1().Events("default")
	for _, c := range []struct {
		field  string
		mutate func(*eventsv1.Event)
	}{
		{"reportingController", func(e *eventsv1.Event) { e.ReportingController = "" }},
		{"eventTime", func(e *eventsv1.Event) { e.EventTime = metav1.MicroTime{} }},
		{"action", func(e *eventsv1.Event) { e.Action = "" }},
		{"series.count", func(e *eventsv1.Event) { e.Series.Count = 1 }},
		{"regarding.namespace", func(e *eventsv1.Event) { e.Regarding.Namespace = "other" }},
	} {
		ev := newEventV1("bad")
		c.mutate(ev)
		_, err := v1.Create(ctx, ev, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !hasFieldCause(err, c.field) {
			t.Errorf("create with bad %s = %v, want 422 naming it", c.field, err)
		}
	}
	if _, err := ts.client.CoreV1().Events("default").Get(ctx, "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after refused creates = %v, want NotFound", err)
	}
	created, err := v1.Create(ctx, newEventV1("good"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Note = "changed"
	if _, err := v1.Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !hasFieldCause(err, "note") {
		t.Errorf("update of note = %v, want 422 naming it", err)
	}
}

func hasFieldCause(err error, field string) bool {
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}
