package registry

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// controllerRevisionResource serves apps/v1 ControllerRevisions: the
// immutable snapshots of a template that DaemonSets and StatefulSets keep
// to roll forward and back.
var controllerRevisionResource = newControllerRevisionResource()

func newControllerRevisionResource() *Resource {
	r := &Resource{
		Name:       "controllerrevisions",
		Singular:   "controllerrevision",
		Kind:       "ControllerRevision",
		Group:      GroupApps,
		Namespaced: true,

		New:     func() runtime.Object { return &appsv1.ControllerRevision{} },
		NewList: func() runtime.Object { return &appsv1.ControllerRevisionList{} },

		PrepareForCreate:       mutate(func(*appsv1.ControllerRevision) {}),
		PrepareForUpdate:       mutatePair(keepGeneration[*appsv1.ControllerRevision]),
		PrepareForStatusUpdate: mutatePair(prepareControllerRevisionForStatusUpdate),

		ValidateCreate:       check(validateControllerRevision),
		ValidateUpdate:       checkPair(validateControllerRevisionUpdate),
		ValidateStatusUpdate: checkPair(validateControllerRevisionUpdate),

		FieldSet: selectable(func(cr *appsv1.ControllerRevision) fields.Set { return metaFields(&cr.ObjectMeta, nil) }),
		Columns:  controllerRevisionColumns,
		Row:      printable(controllerRevisionRow),
	}
	notScalable(r)
	return r
}

// prepareControllerRevisionForStatusUpdate keeps everything but metadata:
// a ControllerRevision has no status.
func prepareControllerRevisionForStatusUpdate(cr, old *appsv1.ControllerRevision) {
	cr.Data, cr.Revision, cr.Generation = old.Data, old.Revision, old.Generation
}

var (
	crDataPath     = field.NewPath("data")
	crRevisionPath = field.NewPath("revision")
)

func validateControllerRevision(cr *appsv1.ControllerRevision) field.ErrorList {
	errs := validateMeta(&cr.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		errs = append(errs, field.Required(crDataPath, "data is mandatory"))
	}
	return append(errs, apivalidation.ValidateNonnegativeField(cr.Revision, crRevisionPath)...)
}

// validateControllerRevisionUpdate allows a new revision number (a
// controller renumbers a revision it rolls back to) but never new data.
func validateControllerRevisionUpdate(cr, old *appsv1.ControllerRevision) field.ErrorList {
	errs := validateMetaUpdate(&cr.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, apivalidation.ValidateNonnegativeField(cr.Revision, crRevisionPath)...)
	if !apiequality.Semantic.DeepEqual(cr.Data.Raw, old.Data.Raw) {
		errs = append(errs, field.Invalid(crDataPath, "<data>", "field is immutable"))
	}
	return errs
}

var controllerRevisionColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Controller", "string", "Controller of the object.", false),
	column("Revision", "integer", "Revision of the ControllerRevision.", false),
	ageColumn(),
}

func controllerRevisionRow(cr *appsv1.ControllerRevision, now time.Time) []interface{} {
	controller := "<none>"
	if ref := metav1.GetControllerOf(cr); ref != nil {
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		controller = gv.WithKind(ref.Kind).GroupKind().String() + "/" + ref.Name
	}
	return []interface{}{cr.Name, controller, cr.Revision, since(cr.CreationTimestamp.Time, now)}
}
