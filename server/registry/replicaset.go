package registry

import (
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupApps is the API group of ReplicaSet and Deployment.
const GroupApps = "apps"

var replicaSetResource = &Resource{
	Name:       "replicasets",
	Singular:   "replicaset",
	Kind:       "ReplicaSet",
	Group:      GroupApps,
	ShortNames: []string{"rs"},
	Namespaced: true,
	HasStatus:  true,
	HasScale:   true,

	New:     func() runtime.Object { return &appsv1.ReplicaSet{} },
	NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },

	PrepareForCreate:       mutate(prepareRSForCreate),
	PrepareForUpdate:       mutatePair(prepareRSForUpdate),
	PrepareForStatusUpdate: mutatePair(prepareRSForStatusUpdate),

	ValidateCreate:       check(validateRS),
	ValidateUpdate:       checkPair(validateRSUpdate),
	ValidateStatusUpdate: checkPair(validateRSStatusUpdate),

	FieldSet: selectable(rsFields),
	Columns:  rsColumns,
	Row:      printable(rsRow),

	Replicas:    rsReplicas,
	SetReplicas: func(obj runtime.Object, n int32) { obj.(*appsv1.ReplicaSet).Spec.Replicas = &n },
}

func prepareRSForCreate(rs *appsv1.ReplicaSet) {
	defaultRS(rs)
	rs.Generation = 1
	rs.Status = appsv1.ReplicaSetStatus{}
}

func prepareRSForUpdate(rs, old *appsv1.ReplicaSet) {
	defaultRS(rs)
	rs.Status = old.Status
	nextGeneration(&rs.ObjectMeta, &old.ObjectMeta, rs.Spec, old.Spec)
}

func prepareRSForStatusUpdate(rs, old *appsv1.ReplicaSet) {
	rs.Spec = old.Spec
	rs.Generation = old.Generation
}

// defaultRS defaults one replica; apps/v1 takes no selector from the
// template.
func defaultRS(rs *appsv1.ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptrTo[int32](1)
	}
	defaultPodSpec(&rs.Spec.Template.Spec)
}

func validateRS(rs *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMeta(&rs.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateRSSpec(&rs.Spec)...)
}

func validateRSUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateRSSpec(&rs.Spec)...)
	return append(errs, apivalidation.ValidateImmutableField(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

func validateRSSpec(s *appsv1.ReplicaSetSpec) field.ErrorList {
	errs := validateReplicas(s.Replicas, specPath.Child("replicas"))
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	sel, selErrs := validateAppsSelector(s.Selector, "replicaset")
	errs = append(errs, selErrs...)
	return append(errs, validateRCTemplate(&s.Template, sel, "ReplicaSet", specPath.Child("template"))...)
}

func validateReplicas(n *int32, path *field.Path) field.ErrorList {
	if n == nil {
		return field.ErrorList{field.Required(path, "")}
	}
	return apivalidation.ValidateNonnegativeField(int64(*n), path)
}

// validateAppsSelector checks the set-based selector of an apps/v1 kind:
// required and not empty. It returns the selector to match the template
// with, nil when it is invalid.
func validateAppsSelector(ls *metav1.LabelSelector, kind string) (labels.Selector, field.ErrorList) {
	path := specPath.Child("selector")
	if ls == nil {
		return nil, field.ErrorList{field.Required(path, "")}
	}
	errs := v1validation.ValidateLabelSelector(ls, v1validation.LabelSelectorValidationOptions{}, path)
	if len(errs) > 0 {
		return nil, errs
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(path, ls, err.Error())}
	}
	if sel.Empty() {
		return nil, field.ErrorList{field.Invalid(path, ls, "empty selector is invalid for "+kind)}
	}
	return sel, nil
}

func validateRSStatusUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
	st := &rs.Status
	return append(errs, validateRCStatus(&corev1.ReplicationControllerStatus{
		Replicas: st.Replicas, FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas: st.ReadyReplicas, AvailableReplicas: st.AvailableReplicas,
		ObservedGeneration: st.ObservedGeneration,
	})...)
}

func rsFields(rs *appsv1.ReplicaSet) fields.Set {
	return metaFields(&rs.ObjectMeta, fields.Set{
		"status.replicas": strconv.Itoa(int(rs.Status.Replicas)),
	})
}

// selectorString is ls in the string form of the scale subresource.
func selectorString(ls *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return ""
	}
	return sel.String()
}

func rsReplicas(obj runtime.Object) (spec, status int32, selector string) {
	rs := obj.(*appsv1.ReplicaSet)
	if rs.Spec.Replicas != nil {
		spec = *rs.Spec.Replicas
	}
	return spec, rs.Status.Replicas, selectorString(rs.Spec.Selector)
}

var rsColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Desired", "integer", appsv1.ReplicaSetSpec{}.SwaggerDoc()["replicas"], false),
	column("Current", "integer", appsv1.ReplicaSetStatus{}.SwaggerDoc()["replicas"], false),
	column("Ready", "integer", appsv1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"], false),
	ageColumn(),
	column("Containers", "string", "Names of each container in the template.", true),
	column("Images", "string", "Images referenced by each container in the template.", true),
	column("Selector", "string", appsv1.ReplicaSetSpec{}.SwaggerDoc()["selector"], true),
}

func rsRow(rs *appsv1.ReplicaSet, now time.Time) []interface{} {
	desired, current, selector := rsReplicas(rs)
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return []interface{}{
		rs.Name, int64(desired), int64(current), int64(rs.Status.ReadyReplicas),
		since(rs.CreationTimestamp.Time, now), names, images, selector,
	}
}
