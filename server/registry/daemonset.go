package registry

import (
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// daemonSetResource serves apps/v1 DaemonSets: one pod per eligible node.
var daemonSetResource = newDaemonSetResource()

func newDaemonSetResource() *Resource {
	r := &Resource{
		Name:       "daemonsets",
		Singular:   "daemonset",
		Kind:       "DaemonSet",
		Group:      GroupApps,
		ShortNames: []string{"ds"},
		Namespaced: true,
		HasStatus:  true,

		New:     func() runtime.Object { return &appsv1.DaemonSet{} },
		NewList: func() runtime.Object { return &appsv1.DaemonSetList{} },

		PrepareForCreate:       mutate(prepareDSForCreate),
		PrepareForUpdate:       mutatePair(prepareDSForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareDSForStatusUpdate),

		ValidateCreate:       check(validateDS),
		ValidateUpdate:       checkPair(validateDSUpdate),
		ValidateStatusUpdate: checkPair(validateDSStatusUpdate),

		FieldSet: selectable(func(ds *appsv1.DaemonSet) fields.Set { return metaFields(&ds.ObjectMeta, nil) }),
		Columns:  dsColumns,
		Row:      printable(dsRow),
	}
	notScalable(r)
	return r
}

// The template generation of a DaemonSet lives, in apps/v1, in the
// annotation appsv1.DeprecatedTemplateGeneration: 1 on create, one more
// on every change of the template, never set by a client's update. The
// controller labels its pods with it (pod-template-generation).

func templateGeneration(ds *appsv1.DaemonSet) int64 {
	n, err := strconv.ParseInt(ds.Annotations[appsv1.DeprecatedTemplateGeneration], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func setTemplateGeneration(ds *appsv1.DaemonSet, n int64) {
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[appsv1.DeprecatedTemplateGeneration] = strconv.FormatInt(n, 10)
}

func prepareDSForCreate(ds *appsv1.DaemonSet) {
	defaultDS(ds)
	ds.Generation = 1
	ds.Status = appsv1.DaemonSetStatus{}
	if templateGeneration(ds) < 1 {
		setTemplateGeneration(ds, 1)
	}
}

// prepareDSForUpdate bumps the generation on a change of the spec and the
// template generation on a change of the template, as Kubernetes does.
func prepareDSForUpdate(ds, old *appsv1.DaemonSet) {
	defaultDS(ds)
	ds.Status = old.Status
	nextGeneration(&ds.ObjectMeta, &old.ObjectMeta, ds.Spec, old.Spec)
	gen := templateGeneration(old)
	if !apiequality.Semantic.DeepEqual(ds.Spec.Template, old.Spec.Template) {
		gen++
	}
	if gen > 0 {
		setTemplateGeneration(ds, gen)
	} else {
		delete(ds.Annotations, appsv1.DeprecatedTemplateGeneration)
	}
}

func prepareDSForStatusUpdate(ds, old *appsv1.DaemonSet) {
	ds.Spec = old.Spec
	ds.Generation = old.Generation
}

// defaultDS applies the apps/v1 defaults: a rolling update of one
// unavailable pod and no surge, and 10 revisions kept.
func defaultDS(ds *appsv1.DaemonSet) {
	s := &ds.Spec
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		ru := s.UpdateStrategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptrTo(intstr.FromInt32(1))
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = ptrTo(intstr.FromInt32(0))
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptrTo[int32](10)
	}
	defaultPodSpec(&s.Template.Spec)
}

func validateDS(ds *appsv1.DaemonSet) field.ErrorList {
	errs := validateMeta(&ds.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateDSSpec(&ds.Spec)...)
}

func validateDSUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateDSSpec(&ds.Spec)...)
	return append(errs, apivalidation.ValidateImmutableField(ds.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

func validateDSSpec(s *appsv1.DaemonSetSpec) field.ErrorList {
	sel, errs := validateAppsSelector(s.Selector, "daemonset")
	errs = append(errs, validateRCTemplate(&s.Template, sel, "DaemonSet", specPath.Child("template"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	return append(errs, validateDSUpdateStrategy(&s.UpdateStrategy, specPath.Child("updateStrategy"))...)
}

func validateDSUpdateStrategy(st *appsv1.DaemonSetUpdateStrategy, path *field.Path) field.ErrorList {
	errs := validateEnum(st.Type, path.Child("type"), appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType)
	if st.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return errs
	}
	if st.RollingUpdate == nil {
		return append(errs, field.Required(path.Child("rollingUpdate"), ""))
	}
	return append(errs, validateDSRollingUpdate(st.RollingUpdate, path.Child("rollingUpdate"))...)
}

// validateDSRollingUpdate checks maxUnavailable and maxSurge: integers or
// percentages up to 100%, and exactly one of them not zero (a DaemonSet
// either replaces pods in place or surges, never both).
func validateDSRollingUpdate(ru *appsv1.RollingUpdateDaemonSet, path *field.Path) field.ErrorList {
	unavail, errs := intOrPercentValue(ru.MaxUnavailable, path.Child("maxUnavailable"), false)
	surge, surgeErrs := intOrPercentValue(ru.MaxSurge, path.Child("maxSurge"), false)
	errs = append(errs, surgeErrs...)
	if len(errs) > 0 {
		return errs
	}
	switch {
	case unavail != 0 && surge != 0:
		errs = append(errs, field.Invalid(path.Child("maxSurge"), ru.MaxSurge.String(), "may not be set when maxUnavailable is non-zero"))
	case unavail == 0 && surge == 0:
		errs = append(errs, field.Required(path.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
	}
	return errs
}

// validateDSStatusUpdate requires counts that are not negative and a
// collisionCount that never goes down.
func validateDSStatusUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
	st := &ds.Status
	for _, c := range []struct {
		name  string
		value int64
	}{
		{"currentNumberScheduled", int64(st.CurrentNumberScheduled)},
		{"numberMisscheduled", int64(st.NumberMisscheduled)},
		{"desiredNumberScheduled", int64(st.DesiredNumberScheduled)},
		{"numberReady", int64(st.NumberReady)},
		{"observedGeneration", st.ObservedGeneration},
		{"updatedNumberScheduled", int64(st.UpdatedNumberScheduled)},
		{"numberAvailable", int64(st.NumberAvailable)},
		{"numberUnavailable", int64(st.NumberUnavailable)},
	} {
		errs = append(errs, apivalidation.ValidateNonnegativeField(c.value, statusPath.Child(c.name))...)
	}
	if st.CollisionCount != nil {
		path := statusPath.Child("collisionCount")
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.CollisionCount), path)...)
		if prev := old.Status.CollisionCount; prev != nil && *st.CollisionCount < *prev {
			errs = append(errs, field.Invalid(path, *st.CollisionCount, "cannot be decremented"))
		}
	}
	return errs
}

var dsColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Desired", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"], false),
	column("Current", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"], false),
	column("Ready", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["numberReady"], false),
	column("Up-to-date", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"], false),
	column("Available", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"], false),
	column("Node Selector", "string", "The node selector of the pod template.", false),
	ageColumn(),
	column("Containers", "string", "Names of each container in the template.", true),
	column("Images", "string", "Images referenced by each container in the template.", true),
	column("Selector", "string", appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"], true),
}

func dsRow(ds *appsv1.DaemonSet, now time.Time) []interface{} {
	st := &ds.Status
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	return []interface{}{
		ds.Name, int64(st.DesiredNumberScheduled), int64(st.CurrentNumberScheduled), int64(st.NumberReady),
		int64(st.UpdatedNumberScheduled), int64(st.NumberAvailable), labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		since(ds.CreationTimestamp.Time, now), names, images, selectorString(ds.Spec.Selector),
	}
}
