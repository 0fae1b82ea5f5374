package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func validEventV1() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.1", Namespace: "default"},
		EventTime:           metav1.NewMicroTime(testNow),
		ReportingController: "example.com/ctl",
		ReportingInstance:   "ctl-1",
		Action:              "Scale",
		Reason:              "Scaled",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
		Type:                corev1.EventTypeNormal,
	}
}

func TestValidateEventV1(t *testing.T) {
	long := string(make([]byte, 129))
	runValidation(t, eventsV1Resource, validEventV1, []validationCase[*eventsv1.Event]{
		{name: "valid"},
		{"no event time", func(e *eventsv1.Event) { e.EventTime = metav1.MicroTime{} }, []string{errKey(required, "eventTime")}},
		{"no type", func(e *eventsv1.Event) { e.Type = "" }, []string{errKey(required, "type")}},
		{"bad type", func(e *eventsv1.Event) { e.Type = "Info" }, []string{errKey(notSupported, "type")}},
		{"no controller", func(e *eventsv1.Event) { e.ReportingController = "" }, []string{errKey(required, "reportingController")}},
		{"bad controller", func(e *eventsv1.Event) { e.ReportingController = "a b" }, []string{errKey(invalid, "reportingController")}},
		{"no instance", func(e *eventsv1.Event) { e.ReportingInstance = "" }, []string{errKey(required, "reportingInstance")}},
		{"long action", func(e *eventsv1.Event) { e.Action = long }, []string{errKey(tooLong, "action")}},
		{"no reason", func(e *eventsv1.Event) { e.Reason = "" }, []string{errKey(required, "reason")}},
		{"long note", func(e *eventsv1.Event) { e.Note = string(make([]byte, 1025)) }, []string{errKey(tooLong, "note")}},
		{"series of one", func(e *eventsv1.Event) { e.Series = &eventsv1.EventSeries{Count: 1, LastObservedTime: e.EventTime} },
			[]string{errKey(invalid, "series.count")}},
		{"series without time", func(e *eventsv1.Event) { e.Series = &eventsv1.EventSeries{Count: 2} },
			[]string{errKey(required, "series.lastObservedTime")}},
		{"other namespace", func(e *eventsv1.Event) { e.Regarding.Namespace = "kube-system" },
			[]string{errKey(invalid, "regarding.namespace")}},
	})
}

// TestEventConversion converts both ways as Kubernetes does and checks a
// round trip loses nothing.
func TestEventConversion(t *testing.T) {
	ev := validEventV1()
	ev.Note = "scaled"
	ev.Related = &corev1.ObjectReference{Kind: "Node", Name: "n1"}
	ev.Series = &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(testNow.Add(time.Minute))}
	ev.DeprecatedSource = corev1.EventSource{Component: "c", Host: "h"}
	ev.DeprecatedFirstTimestamp = ago(time.Hour)
	ev.DeprecatedLastTimestamp = ago(time.Minute)
	ev.DeprecatedCount = 4
	core := EventToCore(ev)
	want := &corev1.Event{
		TypeMeta:   metav1.TypeMeta{Kind: "Event", APIVersion: "v1"},
		ObjectMeta: ev.ObjectMeta, InvolvedObject: ev.Regarding, Reason: "Scaled", Message: "scaled",
		Source: ev.DeprecatedSource, FirstTimestamp: ev.DeprecatedFirstTimestamp, LastTimestamp: ev.DeprecatedLastTimestamp,
		Count: 4, Type: corev1.EventTypeNormal, EventTime: ev.EventTime, Series: &corev1.EventSeries{Count: 3, LastObservedTime: ev.Series.LastObservedTime},
		Action: "Scale", Related: ev.Related, ReportingController: "example.com/ctl", ReportingInstance: "ctl-1",
	}
	if diff := cmp.Diff(want, core); diff != "" {
		t.Errorf("EventToCore (-want +got):\n%s", diff)
	}
	back := EventFromCore(core)
	ev.TypeMeta = metav1.TypeMeta{Kind: "Event", APIVersion: "events.k8s.io/v1"}
	if diff := cmp.Diff(ev, back); diff != "" {
		t.Errorf("EventFromCore(EventToCore(ev)) (-want +got):\n%s", diff)
	}
	// Stored as a core Event, read back as the view.
	data, err := EncodeStored(eventsV1Resource, ev)
	if err != nil {
		t.Fatal(err)
	}
	var stored corev1.Event
	if err := DecodeStored(data, &stored); err != nil || stored.Message != "scaled" {
		t.Errorf("stored form = %+v, %v; want a core Event", stored, err)
	}
	var got runtime.Object
	if got, err = DecodeStoredAs(eventsV1Resource, data); err != nil {
		t.Fatal(err)
	}
	if e, ok := got.(*eventsv1.Event); !ok || e.Note != "scaled" || e.Regarding != ev.Regarding {
		t.Errorf("DecodeStoredAs = %+v, want the events.k8s.io Event", got)
	}
}

// TestEventFieldSelectors checks the field names each version selects
// on: an event reported through events.k8s.io is found by its reporting
// controller under both, as "source" in core/v1.
func TestEventFieldSelectors(t *testing.T) {
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "e", Namespace: "default"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Name: "web"},
		Reason:              "Started",
		Type:                "Normal",
		ReportingController: "example.com/ctl",
	}
	core := eventFields(ev)
	if core["source"] != "example.com/ctl" || core["involvedObject.name"] != "web" {
		t.Errorf("core fields = %v, want source example.com/ctl and involvedObject.name web", core)
	}
	v1 := eventsV1Fields(ev)
	for k, want := range map[string]string{"reportingController": "example.com/ctl", "regarding.kind": "Pod", "regarding.name": "web",
		"reason": "Started", "type": "Normal", "metadata.name": "e"} {
		if v1[k] != want {
			t.Errorf("events.k8s.io field %s = %q, want %q", k, v1[k], want)
		}
	}
	if _, ok := v1["involvedObject.name"]; ok {
		t.Errorf("events.k8s.io fields carry the core name involvedObject.name: %v", v1)
	}
}
