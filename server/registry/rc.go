package registry

import (
	"maps"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var replicationControllerResource = &Resource{
	Name:       "replicationcontrollers",
	Singular:   "replicationcontroller",
	Kind:       "ReplicationController",
	ShortNames: []string{"rc"},
	Namespaced: true,
	HasStatus:  true,
	HasScale:   true,

	New:     func() runtime.Object { return &corev1.ReplicationController{} },
	NewList: func() runtime.Object { return &corev1.ReplicationControllerList{} },

	PrepareForCreate:       mutate(prepareRCForCreate),
	PrepareForUpdate:       mutatePair(prepareRCForUpdate),
	PrepareForStatusUpdate: mutatePair(prepareRCForStatusUpdate),

	ValidateCreate:       check(validateRC),
	ValidateUpdate:       checkPair(validateRCUpdate),
	ValidateStatusUpdate: checkPair(validateRCStatusUpdate),

	FieldSet: selectable(rcFields),
	Columns:  rcColumns,
	Row:      printable(rcRow),

	Replicas:    rcReplicas,
	SetReplicas: setRCReplicas,
}

func prepareRCForCreate(rc *corev1.ReplicationController) {
	defaultRC(rc)
	rc.Generation = 1
	rc.Status = corev1.ReplicationControllerStatus{}
}

func prepareRCForUpdate(rc, old *corev1.ReplicationController) {
	defaultRC(rc)
	rc.Status = old.Status
	nextGeneration(&rc.ObjectMeta, &old.ObjectMeta, rc.Spec, old.Spec)
}

func prepareRCForStatusUpdate(rc, old *corev1.ReplicationController) {
	rc.Spec = old.Spec
	rc.Generation = old.Generation
}

// defaultRC defaults one replica, and the selector and labels to the
// template's labels when they are empty.
func defaultRC(rc *corev1.ReplicationController) {
	if t := rc.Spec.Template; t != nil {
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = maps.Clone(t.Labels)
		}
		if len(rc.Labels) == 0 {
			rc.Labels = maps.Clone(t.Labels)
		}
		defaultPodSpec(&t.Spec)
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = ptrTo[int32](1)
	}
}

func validateRC(rc *corev1.ReplicationController) field.ErrorList {
	errs := validateMeta(&rc.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateRCSpec(&rc.Spec)...)
}

func validateRCUpdate(rc, old *corev1.ReplicationController) field.ErrorList {
	errs := validateMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateRCSpec(&rc.Spec)...)
}

func validateRCSpec(s *corev1.ReplicationControllerSpec) field.ErrorList {
	var errs field.ErrorList
	if s.Replicas == nil {
		errs = append(errs, field.Required(specPath.Child("replicas"), ""))
	} else {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.Replicas), specPath.Child("replicas"))...)
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if len(s.Selector) == 0 {
		errs = append(errs, field.Required(specPath.Child("selector"), ""))
	} else {
		errs = append(errs, v1validation.ValidateLabels(s.Selector, specPath.Child("selector"))...)
	}
	var sel labels.Selector
	if len(s.Selector) > 0 {
		sel = labels.SelectorFromSet(s.Selector)
	}
	return append(errs, validateRCTemplate(s.Template, sel, "ReplicationController", specPath.Child("template"))...)
}

// validateRCTemplate checks the pod template of a kind that keeps pods
// running (ReplicationController, ReplicaSet, Deployment): its labels must
// match the selector (nil: not checked, the selector is invalid), and its
// pods must restart forever.
func validateRCTemplate(t *corev1.PodTemplateSpec, selector labels.Selector, kind string, path *field.Path) field.ErrorList {
	if t == nil {
		return field.ErrorList{field.Required(path, "")}
	}
	metaPath := path.Child("metadata")
	errs := v1validation.ValidateLabels(t.Labels, metaPath.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, metaPath.Child("annotations"))...)
	if selector != nil && !selector.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(metaPath.Child("labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	specPath := path.Child("spec")
	errs = append(errs, validatePodSpec(&t.Spec, specPath)...)
	if p := t.Spec.RestartPolicy; p != "" && p != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(specPath.Child("restartPolicy"), p, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), *t.Spec.ActiveDeadlineSeconds,
			"activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

func validateRCStatusUpdate(rc, old *corev1.ReplicationController) field.ErrorList {
	errs := validateMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateRCStatus(&rc.Status)...)
}

// validateRCStatus requires counts that are not negative and that nest:
// available ≤ ready ≤ replicas, fully labeled ≤ replicas.
func validateRCStatus(st *corev1.ReplicationControllerStatus) field.ErrorList {
	counts := []struct {
		name       string
		value, max int64
		maxName    string
	}{
		{"replicas", int64(st.Replicas), -1, ""},
		{"fullyLabeledReplicas", int64(st.FullyLabeledReplicas), int64(st.Replicas), "status.replicas"},
		{"readyReplicas", int64(st.ReadyReplicas), int64(st.Replicas), "status.replicas"},
		{"availableReplicas", int64(st.AvailableReplicas), int64(st.ReadyReplicas), "status.readyReplicas"},
		{"observedGeneration", st.ObservedGeneration, -1, ""},
	}
	var errs field.ErrorList
	for _, c := range counts {
		p := statusPath.Child(c.name)
		errs = append(errs, apivalidation.ValidateNonnegativeField(c.value, p)...)
		if c.max >= 0 && c.value > c.max {
			errs = append(errs, field.Invalid(p, c.value, "cannot be greater than "+c.maxName))
		}
	}
	return errs
}

func rcFields(rc *corev1.ReplicationController) fields.Set {
	return metaFields(&rc.ObjectMeta, fields.Set{
		"status.replicas": strconv.Itoa(int(rc.Status.Replicas)),
	})
}

// rcReplicas serves the scale subresource.
func rcReplicas(obj runtime.Object) (spec, status int32, selector string) {
	rc := obj.(*corev1.ReplicationController)
	if rc.Spec.Replicas != nil {
		spec = *rc.Spec.Replicas
	}
	return spec, rc.Status.Replicas, labels.SelectorFromSet(rc.Spec.Selector).String()
}

func setRCReplicas(obj runtime.Object, n int32) {
	obj.(*corev1.ReplicationController).Spec.Replicas = &n
}

var rcColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Desired", "integer", corev1.ReplicationControllerSpec{}.SwaggerDoc()["replicas"], false),
	column("Current", "integer", corev1.ReplicationControllerStatus{}.SwaggerDoc()["replicas"], false),
	column("Ready", "integer", corev1.ReplicationControllerStatus{}.SwaggerDoc()["readyReplicas"], false),
	ageColumn(),
	column("Containers", "string", "Names of each container in the template.", true),
	column("Images", "string", "Images referenced by each container in the template.", true),
	column("Selector", "string", corev1.ReplicationControllerSpec{}.SwaggerDoc()["selector"], true),
}

func rcRow(rc *corev1.ReplicationController, now time.Time) []interface{} {
	desired, current, _ := rcReplicas(rc)
	var names, images string
	if t := rc.Spec.Template; t != nil {
		names, images = containerCells(t.Spec.Containers)
	}
	return []interface{}{
		rc.Name,
		int64(desired),
		int64(current),
		int64(rc.Status.ReadyReplicas),
		since(rc.CreationTimestamp.Time, now),
		names,
		images,
		labels.FormatLabels(rc.Spec.Selector),
	}
}
