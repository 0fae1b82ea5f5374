package registry

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Cell values kubectl prints for missing data.
const (
	none    = "<none>"
	unknown = "<unknown>"
)

// Table builds the metav1.Table kubectl asks for, one row per object.
// include says what each row carries in its Object: nothing (None), the
// object's metadata as a PartialObjectMetadata (Metadata, also the default
// when empty, as in Kubernetes), or the object itself (Object). Neither
// objs nor r is modified; the caller sets the list metadata.
func (r *Resource) Table(objs []runtime.Object, include metav1.IncludeObjectPolicy) *metav1.Table {
	t := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
		ColumnDefinitions: append([]metav1.TableColumnDefinition(nil), r.Columns...),
		Rows:              make([]metav1.TableRow, 0, len(objs)),
	}
	for _, obj := range objs {
		row := metav1.TableRow{Cells: r.Row(obj)}
		switch include {
		case metav1.IncludeObject:
			row.Object = runtime.RawExtension{Object: obj}
		case metav1.IncludeMetadata, "":
			row.Object = runtime.RawExtension{Object: partialMetadata(obj)}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// partialMetadata returns a copy of obj's metadata, nil for an object
// without metadata.
func partialMetadata(obj runtime.Object) runtime.Object {
	a, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return nil
	}
	om, ok := a.GetObjectMeta().(*metav1.ObjectMeta)
	if !ok {
		return nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
		ObjectMeta: *om.DeepCopy(),
	}
}

// nameColumn is the first column of most tables; its "name" format tells
// kubectl which cell holds the object's name.
func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{
		Name: "Name", Type: "string", Format: "name",
		Description: metav1.ObjectMeta{}.SwaggerDoc()["name"],
	}
}

func ageColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{
		Name: "Age", Type: "string",
		Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"],
	}
}

// column is a plain column; wide ones have priority 1 and show only with
// -o wide.
func column(name, typ, description string, wide bool) metav1.TableColumnDefinition {
	c := metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
	if wide {
		c.Priority = 1
	}
	return c
}

// since prints how long ago t was as kubectl does ("5m", "3d4h").
func since(t time.Time, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t))
}

// orNone prints s, or <none> when it is empty.
func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// orUnknown prints s, or <unknown> when it is empty.
func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}
