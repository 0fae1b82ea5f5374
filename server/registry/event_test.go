package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func testEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web.1842c3a1b2", Namespace: "default", CreationTimestamp: ago(10 * time.Minute)},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "u-1",
			APIVersion: "v1", FieldPath: "spec.containers{nginx}"},
		Reason:  "Pulled",
		Message: "Successfully pulled image \"nginx:1.27\"\n",
		Type:    corev1.EventTypeNormal,
		Source:  corev1.EventSource{Component: "kubelet", Host: "node-1"},
	}
}

func validEvent() *corev1.Event {
	ev := testEvent()
	eventResource.PrepareForCreate(ev)
	return ev
}

func TestEventDefaults(t *testing.T) {
	ev := validEvent()
	got := []interface{}{ev.FirstTimestamp, ev.LastTimestamp, ev.Count}
	want := []interface{}{ago(10 * time.Minute), ago(10 * time.Minute), int32(1)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(firstTimestamp, lastTimestamp, count) (-want +got):\n%s", diff)
	}

	series := testEvent()
	series.EventTime = metav1.NewMicroTime(testNow)
	eventResource.PrepareForCreate(series)
	if !series.FirstTimestamp.IsZero() || series.Count != 0 {
		t.Errorf("event with eventTime got old-style defaults: first %v count %d", series.FirstTimestamp, series.Count)
	}
}

func TestValidateEvent(t *testing.T) {
	runValidation(t, eventResource, validEvent, []validationCase[*corev1.Event]{
		{name: "valid"},
		{"cluster-scoped object in default", func(ev *corev1.Event) {
			ev.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
		}, nil},
		{"cluster-scoped object elsewhere", func(ev *corev1.Event) {
			ev.Namespace, ev.InvolvedObject = "team-a", corev1.ObjectReference{Kind: "Node", Name: "node-1"}
		}, []string{errKey(invalid, "involvedObject.namespace")}},
		{"object in another namespace", func(ev *corev1.Event) { ev.InvolvedObject.Namespace = "team-a" },
			[]string{errKey(invalid, "involvedObject.namespace")}},
		{"type supported", func(ev *corev1.Event) { ev.Type = "Error" }, []string{errKey(notSupported, "type")}},
		{"count not negative", func(ev *corev1.Event) { ev.Count = -1 }, []string{errKey(invalid, "count")}},
		{"namespace required", func(ev *corev1.Event) { ev.Namespace = "" }, []string{errKey(required, "metadata.namespace"), errKey(invalid, "involvedObject.namespace")}},
	})
	base := func() *corev1.Event { return stored(eventResource, testEvent()) }
	runUpdate(t, eventResource, false, base, []validationCase[*corev1.Event]{
		{"seen again", func(ev *corev1.Event) { ev.Count, ev.LastTimestamp = 2, metav1.NewTime(testNow) }, nil},
		{"moved", func(ev *corev1.Event) { ev.InvolvedObject.Namespace = "kube-system" }, []string{errKey(invalid, "involvedObject.namespace")}},
	})
}

func TestEventFieldSet(t *testing.T) {
	ev := validEvent()
	ev.ReportingController = "minik-agent"
	want := fields.Set{
		"metadata.name":                  "web.1842c3a1b2",
		"metadata.namespace":             "default",
		"involvedObject.kind":            "Pod",
		"involvedObject.namespace":       "default",
		"involvedObject.name":            "web",
		"involvedObject.uid":             "u-1",
		"involvedObject.apiVersion":      "v1",
		"involvedObject.resourceVersion": "",
		"involvedObject.fieldPath":       "spec.containers{nginx}",
		"reason":                         "Pulled",
		"reportingComponent":             "minik-agent",
		"source":                         "kubelet",
		"type":                           "Normal",
	}
	if diff := cmp.Diff(want, eventResource.FieldSet(ev)); diff != "" {
		t.Errorf("FieldSet (-want +got):\n%s", diff)
	}
}

func TestEventRow(t *testing.T) {
	ev := validEvent()
	ev.FirstTimestamp, ev.LastTimestamp, ev.Count = ago(time.Hour), ago(2*time.Minute), 4
	want := []interface{}{"2m", "Normal", "Pulled", "pod/web", "spec.containers{nginx}", "kubelet, node-1",
		"Successfully pulled image \"nginx:1.27\"", "60m", int64(4), "web.1842c3a1b2"}
	if diff := cmp.Diff(want, eventRow(ev, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	newStyle := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "n.1"},
		EventTime:           metav1.NewMicroTime(testNow.Add(-30 * time.Second)),
		InvolvedObject:      corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		Series:              &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(testNow.Add(-5 * time.Second))},
		ReportingController: "minik-controller", ReportingInstance: "server-1",
		Type: "Warning", Reason: "NodeNotReady",
	}
	want = []interface{}{"5s", "Warning", "NodeNotReady", "node/node-1", "", "minik-controller, server-1", "", "30s", int64(7), "n.1"}
	if diff := cmp.Diff(want, eventRow(newStyle, testNow)); diff != "" {
		t.Errorf("row of a series event (-want +got):\n%s", diff)
	}
}
