package registry

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var eventResource = newEventResource()

func newEventResource() *Resource {
	r := &Resource{
		Name:       "events",
		Singular:   "event",
		Kind:       "Event",
		ShortNames: []string{"ev"},
		Namespaced: true,

		New:     func() runtime.Object { return &corev1.Event{} },
		NewList: func() runtime.Object { return &corev1.EventList{} },

		PrepareForCreate:       mutate(defaultEvent),
		PrepareForUpdate:       mutatePair(prepareEventForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareEventForStatusUpdate),

		ValidateCreate:       check(validateEvent),
		ValidateUpdate:       checkPair(validateEventUpdate),
		ValidateStatusUpdate: checkPair(validateEventUpdate),

		FieldSet: selectable(eventFields),
		Columns:  eventColumns,
		Row:      printable(eventRow),
	}
	notScalable(r)
	return r
}

// defaultEvent fills the timestamps and count of an old-style event (one
// without eventTime) that left them out: first seen when created, last
// seen when first seen, seen once. The API server sets
// creationTimestamp before calling PrepareForCreate.
func defaultEvent(ev *corev1.Event) {
	if !ev.EventTime.IsZero() {
		return
	}
	if ev.FirstTimestamp.IsZero() {
		ev.FirstTimestamp = ev.CreationTimestamp
	}
	if ev.LastTimestamp.IsZero() {
		ev.LastTimestamp = ev.FirstTimestamp
	}
	if ev.Count == 0 {
		ev.Count = 1
	}
}

func prepareEventForUpdate(ev, old *corev1.Event) {
	defaultEvent(ev)
	ev.Generation = old.Generation
}

// prepareEventForStatusUpdate keeps everything but metadata: events have
// no status (and no status subresource).
func prepareEventForStatusUpdate(ev, old *corev1.Event) {
	meta := ev.ObjectMeta
	*ev = *old.DeepCopy()
	ev.ObjectMeta = meta
	ev.Generation = old.Generation
}

func validateEvent(ev *corev1.Event) field.ErrorList {
	errs := validateMeta(&ev.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateEventFields(ev)...)
}

func validateEventUpdate(ev, old *corev1.Event) field.ErrorList {
	errs := validateMetaUpdate(&ev.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateEventFields(ev)...)
}

// validateEventFields requires the event to live in its object's
// namespace; events about cluster-scoped objects live in "default".
func validateEventFields(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	involved := ev.InvolvedObject.Namespace
	switch {
	case involved == "" && ev.Namespace != metav1.NamespaceDefault:
		errs = append(errs, field.Invalid(nsPath, involved, "does not match event.namespace"))
	case involved != "" && involved != ev.Namespace:
		errs = append(errs, field.Invalid(nsPath, involved, "does not match event.namespace"))
	}
	errs = append(errs, validateOptionalEnum(ev.Type, field.NewPath("type"), corev1.EventTypeNormal, corev1.EventTypeWarning)...)
	return append(errs, apivalidation.ValidateNonnegativeField(int64(ev.Count), field.NewPath("count"))...)
}

func eventFields(ev *corev1.Event) fields.Set {
	o := ev.InvolvedObject
	// An event reported through events.k8s.io has no source component:
	// its reporting controller stands for it, as upstream selects it.
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	return metaFields(&ev.ObjectMeta, fields.Set{
		"involvedObject.kind":            o.Kind,
		"involvedObject.namespace":       o.Namespace,
		"involvedObject.name":            o.Name,
		"involvedObject.uid":             string(o.UID),
		"involvedObject.apiVersion":      o.APIVersion,
		"involvedObject.resourceVersion": o.ResourceVersion,
		"involvedObject.fieldPath":       o.FieldPath,
		"reason":                         ev.Reason,
		"reportingComponent":             ev.ReportingController,
		"source":                         source,
		"type":                           ev.Type,
	})
}

var eventColumns = []metav1.TableColumnDefinition{
	column("Last Seen", "string", corev1.Event{}.SwaggerDoc()["lastTimestamp"], false),
	column("Type", "string", corev1.Event{}.SwaggerDoc()["type"], false),
	column("Reason", "string", corev1.Event{}.SwaggerDoc()["reason"], false),
	column("Object", "string", corev1.Event{}.SwaggerDoc()["involvedObject"], false),
	column("Subobject", "string", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"], true),
	column("Source", "string", corev1.Event{}.SwaggerDoc()["source"], true),
	column("Message", "string", corev1.Event{}.SwaggerDoc()["message"], false),
	column("First Seen", "string", corev1.Event{}.SwaggerDoc()["firstTimestamp"], true),
	column("Count", "integer", corev1.Event{}.SwaggerDoc()["count"], true),
	withPriority(nameColumn(), 1),
}

func withPriority(c metav1.TableColumnDefinition, p int32) metav1.TableColumnDefinition {
	c.Priority = p
	return c
}

func eventRow(ev *corev1.Event, now time.Time) []interface{} {
	first := since(ev.FirstTimestamp.Time, now)
	if ev.FirstTimestamp.IsZero() {
		first = since(ev.EventTime.Time, now)
	}
	last := first
	if !ev.LastTimestamp.IsZero() {
		last = since(ev.LastTimestamp.Time, now)
	}
	count := ev.Count
	if s := ev.Series; s != nil {
		last, count = since(s.LastObservedTime.Time, now), s.Count
	} else if count == 0 {
		count = 1
	}
	object := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		object += "/" + ev.InvolvedObject.Name
	}
	return []interface{}{
		last, ev.Type, ev.Reason, object, ev.InvolvedObject.FieldPath,
		eventSource(ev), strings.TrimSpace(ev.Message), first, int64(count), ev.Name,
	}
}

// eventSource prints "component, host", falling back to the reporting
// controller and instance of newer events.
func eventSource(ev *corev1.Event) string {
	component, host := ev.Source.Component, ev.Source.Host
	if component == "" {
		component = ev.ReportingController
	}
	if host == "" {
		host = ev.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

// eventsV1FieldNames maps the field selector names of events.k8s.io/v1
// to those of the core Event the object is stored as.
var eventsV1FieldNames = map[string]string{
	"regarding.kind":            "involvedObject.kind",
	"regarding.namespace":       "involvedObject.namespace",
	"regarding.name":            "involvedObject.name",
	"regarding.uid":             "involvedObject.uid",
	"regarding.apiVersion":      "involvedObject.apiVersion",
	"regarding.resourceVersion": "involvedObject.resourceVersion",
	"regarding.fieldPath":       "involvedObject.fieldPath",
	"reportingController":       "reportingComponent",
	"reason":                    "reason",
	"type":                      "type",
}

// eventsV1Fields is the field set of an events.k8s.io/v1 Event, under the
// names of that version.
func eventsV1Fields(ev *corev1.Event) fields.Set {
	core := eventFields(ev)
	set := fields.Set{"metadata.name": core["metadata.name"], "metadata.namespace": core["metadata.namespace"]}
	for v1, c := range eventsV1FieldNames {
		set[v1] = core[c]
	}
	return set
}
