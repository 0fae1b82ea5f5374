package registry

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupEvents is the API group of the newer Event API.
const GroupEvents = "events.k8s.io"

// Limits of an events.k8s.io Event, as in Kubernetes.
const (
	maxEventFieldLength = 128  // reportingInstance, action, reason
	maxEventNoteLength  = 1024 // note
)

// eventsV1Resource serves the core Events under events.k8s.io/v1, as
// Kubernetes does: one store, two APIs.
var eventsV1Resource = newEventsV1Resource()

func newEventsV1Resource() *Resource {
	r := &Resource{
		Name:       "events",
		Singular:   "event",
		Kind:       "Event",
		Group:      GroupEvents,
		ShortNames: []string{"ev"},
		Namespaced: true,
		View: &View{
			Of:         eventResource,
			ToStored:   func(obj runtime.Object) runtime.Object { return EventToCore(obj.(*eventsv1.Event)) },
			FromStored: func(obj runtime.Object) runtime.Object { return EventFromCore(obj.(*corev1.Event)) },
		},

		New:     func() runtime.Object { return &eventsv1.Event{} },
		NewList: func() runtime.Object { return &eventsv1.EventList{} },

		PrepareForCreate:       mutate(func(*eventsv1.Event) {}),
		PrepareForUpdate:       mutatePair(func(ev, old *eventsv1.Event) { ev.Generation = old.Generation }),
		PrepareForStatusUpdate: mutatePair(prepareEventV1ForStatusUpdate),

		ValidateCreate:       check(validateEventV1),
		ValidateUpdate:       checkPair(validateEventV1Update),
		ValidateStatusUpdate: checkPair(validateEventV1Update),

		FieldSet: selectable(func(ev *eventsv1.Event) fields.Set { return eventsV1Fields(EventToCore(ev)) }),
		Columns:  eventColumns,
		Row:      func(obj runtime.Object) []interface{} { return eventResource.Row(EventToCore(obj.(*eventsv1.Event))) },
	}
	notScalable(r)
	return r
}

// EventToCore converts an events.k8s.io/v1 Event to the core/v1 Event it
// is stored as: regarding is the involved object, note the message, and
// the deprecated fields are the core ones they name. ev is not modified.
func EventToCore(ev *eventsv1.Event) *corev1.Event {
	ev = ev.DeepCopy()
	out := &corev1.Event{
		TypeMeta:            metav1.TypeMeta{Kind: "Event", APIVersion: "v1"},
		ObjectMeta:          ev.ObjectMeta,
		InvolvedObject:      ev.Regarding,
		Reason:              ev.Reason,
		Message:             ev.Note,
		Source:              ev.DeprecatedSource,
		FirstTimestamp:      ev.DeprecatedFirstTimestamp,
		LastTimestamp:       ev.DeprecatedLastTimestamp,
		Count:               ev.DeprecatedCount,
		Type:                ev.Type,
		EventTime:           ev.EventTime,
		Action:              ev.Action,
		Related:             ev.Related,
		ReportingController: ev.ReportingController,
		ReportingInstance:   ev.ReportingInstance,
	}
	if s := ev.Series; s != nil {
		out.Series = &corev1.EventSeries{Count: s.Count, LastObservedTime: s.LastObservedTime}
	}
	return out
}

// EventFromCore converts a core/v1 Event to events.k8s.io/v1, the inverse
// of EventToCore. ev is not modified.
func EventFromCore(ev *corev1.Event) *eventsv1.Event {
	ev = ev.DeepCopy()
	out := &eventsv1.Event{
		TypeMeta:                 metav1.TypeMeta{Kind: "Event", APIVersion: GroupEvents + "/v1"},
		ObjectMeta:               ev.ObjectMeta,
		EventTime:                ev.EventTime,
		ReportingController:      ev.ReportingController,
		ReportingInstance:        ev.ReportingInstance,
		Action:                   ev.Action,
		Reason:                   ev.Reason,
		Regarding:                ev.InvolvedObject,
		Related:                  ev.Related,
		Note:                     ev.Message,
		Type:                     ev.Type,
		DeprecatedSource:         ev.Source,
		DeprecatedFirstTimestamp: ev.FirstTimestamp,
		DeprecatedLastTimestamp:  ev.LastTimestamp,
		DeprecatedCount:          ev.Count,
	}
	if s := ev.Series; s != nil {
		out.Series = &eventsv1.EventSeries{Count: s.Count, LastObservedTime: s.LastObservedTime}
	}
	return out
}

// prepareEventV1ForStatusUpdate keeps everything but metadata: events
// have no status.
func prepareEventV1ForStatusUpdate(ev, old *eventsv1.Event) {
	meta := ev.ObjectMeta
	*ev = *old.DeepCopy()
	ev.ObjectMeta = meta
	ev.Generation = old.Generation
}

func validateEventV1(ev *eventsv1.Event) field.ErrorList {
	errs := validateMeta(&ev.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateEventV1Fields(ev)...)
}

// validateEventV1Update also keeps what identifies the occurrence, as
// Kubernetes does for events written through events.k8s.io.
func validateEventV1Update(ev, old *eventsv1.Event) field.ErrorList {
	errs := validateMetaUpdate(&ev.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateEventV1Fields(ev)...)
	for _, c := range []struct {
		name     string
		now, was interface{}
	}{
		{"regarding", ev.Regarding, old.Regarding},
		{"related", ev.Related, old.Related},
		{"reportingController", ev.ReportingController, old.ReportingController},
		{"reportingInstance", ev.ReportingInstance, old.ReportingInstance},
		{"action", ev.Action, old.Action},
		{"reason", ev.Reason, old.Reason},
		{"type", ev.Type, old.Type},
		{"eventTime", ev.EventTime, old.EventTime},
		{"note", ev.Note, old.Note},
	} {
		errs = append(errs, apivalidation.ValidateImmutableField(c.now, c.was, field.NewPath(c.name))...)
	}
	return errs
}

// validateEventV1Fields checks what events.k8s.io requires: an event
// time, a type, a reporting controller (a qualified name) and instance,
// an action and a reason of bounded length, a bounded note, a series of
// two or more, and the regarding object in the event's namespace.
func validateEventV1Fields(ev *eventsv1.Event) field.ErrorList {
	var errs field.ErrorList
	if ev.EventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	errs = append(errs, validateEnum(ev.Type, field.NewPath("type"), corev1.EventTypeNormal, corev1.EventTypeWarning)...)
	rc := field.NewPath("reportingController")
	if ev.ReportingController == "" {
		errs = append(errs, field.Required(rc, ""))
	} else {
		errs = append(errs, messages(rc, ev.ReportingController, validation.IsQualifiedName(ev.ReportingController))...)
	}
	for _, c := range []struct{ name, value string }{
		{"reportingInstance", ev.ReportingInstance}, {"action", ev.Action}, {"reason", ev.Reason},
	} {
		errs = append(errs, requiredMaxLength(c.value, maxEventFieldLength, field.NewPath(c.name))...)
	}
	if len(ev.Note) > maxEventNoteLength {
		errs = append(errs, field.TooLong(field.NewPath("note"), "", maxEventNoteLength))
	}
	if s := ev.Series; s != nil {
		if s.Count < 2 {
			errs = append(errs, field.Invalid(field.NewPath("series", "count"), s.Count, "should be at least 2"))
		}
		if s.LastObservedTime.IsZero() {
			errs = append(errs, field.Required(field.NewPath("series", "lastObservedTime"), ""))
		}
	}
	if ns := ev.Regarding.Namespace; ns != "" && ns != ev.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("regarding", "namespace"), ns, "does not match event.namespace"))
	}
	return errs
}

func requiredMaxLength(v string, max int, path *field.Path) field.ErrorList {
	switch {
	case v == "":
		return field.ErrorList{field.Required(path, "")}
	case len(v) > max:
		return field.ErrorList{field.TooLong(path, "", max)}
	}
	return nil
}
