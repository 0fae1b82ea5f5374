package registry

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var deploymentResource = &Resource{
	Name:       "deployments",
	Singular:   "deployment",
	Kind:       "Deployment",
	Group:      GroupApps,
	ShortNames: []string{"deploy"},
	Namespaced: true,
	HasStatus:  true,
	HasScale:   true,

	New:     func() runtime.Object { return &appsv1.Deployment{} },
	NewList: func() runtime.Object { return &appsv1.DeploymentList{} },

	PrepareForCreate:       mutate(prepareDeploymentForCreate),
	PrepareForUpdate:       mutatePair(prepareDeploymentForUpdate),
	PrepareForStatusUpdate: mutatePair(prepareDeploymentForStatusUpdate),

	ValidateCreate:       check(validateDeployment),
	ValidateUpdate:       checkPair(validateDeploymentUpdate),
	ValidateStatusUpdate: checkPair(validateDeploymentStatusUpdate),

	FieldSet: selectable(func(d *appsv1.Deployment) fields.Set { return metaFields(&d.ObjectMeta, nil) }),
	Columns:  deploymentColumns,
	Row:      printable(deploymentRow),

	Replicas:    deploymentReplicas,
	SetReplicas: func(obj runtime.Object, n int32) { obj.(*appsv1.Deployment).Spec.Replicas = &n },
}

func prepareDeploymentForCreate(d *appsv1.Deployment) {
	defaultDeployment(d)
	d.Generation = 1
	d.Status = appsv1.DeploymentStatus{}
}

// prepareDeploymentForUpdate bumps the generation on a change of the spec
// or of the annotations, as Kubernetes does: the controller reads
// annotations (the revision, the change cause) as part of the desired
// state.
func prepareDeploymentForUpdate(d, old *appsv1.Deployment) {
	defaultDeployment(d)
	d.Status = old.Status
	nextGeneration(&d.ObjectMeta, &old.ObjectMeta, d.Spec, old.Spec)
	if d.Generation == old.Generation && !apiequality.Semantic.DeepEqual(d.Annotations, old.Annotations) {
		d.Generation++
	}
}

func prepareDeploymentForStatusUpdate(d, old *appsv1.Deployment) {
	d.Spec = old.Spec
	d.Generation = old.Generation
}

// defaultDeployment applies the apps/v1 defaults: one replica, a rolling
// update of 25% surge and 25% unavailable, 10 old ReplicaSets kept and a
// progress deadline of 600 s.
func defaultDeployment(d *appsv1.Deployment) {
	s := &d.Spec
	if s.Replicas == nil {
		s.Replicas = ptrTo[int32](1)
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		quarter := intstr.FromString("25%")
		if s.Strategy.RollingUpdate.MaxUnavailable == nil {
			s.Strategy.RollingUpdate.MaxUnavailable = ptrTo(quarter)
		}
		if s.Strategy.RollingUpdate.MaxSurge == nil {
			s.Strategy.RollingUpdate.MaxSurge = ptrTo(quarter)
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptrTo[int32](10)
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = ptrTo[int32](600)
	}
	defaultPodSpec(&s.Template.Spec)
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	errs := validateMeta(&d.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateDeploymentSpec(&d.Spec)...)
}

func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateDeploymentSpec(&d.Spec)...)
	return append(errs, apivalidation.ValidateImmutableField(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

func validateDeploymentSpec(s *appsv1.DeploymentSpec) field.ErrorList {
	errs := validateReplicas(s.Replicas, specPath.Child("replicas"))
	sel, selErrs := validateAppsSelector(s.Selector, "deployment")
	errs = append(errs, selErrs...)
	errs = append(errs, validateRCTemplate(&s.Template, sel, "ReplicaSet", specPath.Child("template"))...)
	errs = append(errs, validateDeploymentStrategy(&s.Strategy, specPath.Child("strategy"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if p := s.ProgressDeadlineSeconds; p != nil {
		path := specPath.Child("progressDeadlineSeconds")
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*p), path)...)
		if *p <= s.MinReadySeconds {
			errs = append(errs, field.Invalid(path, *p, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateDeploymentStrategy(st *appsv1.DeploymentStrategy, path *field.Path) field.ErrorList {
	errs := validateEnum(st.Type, path.Child("type"), appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType)
	ru := st.RollingUpdate
	switch {
	case st.Type == appsv1.RecreateDeploymentStrategyType && ru != nil:
		errs = append(errs, field.Forbidden(path.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
	case st.Type == appsv1.RollingUpdateDeploymentStrategyType && ru != nil:
		errs = append(errs, validateRollingUpdate(ru, path.Child("rollingUpdate"))...)
	}
	return errs
}

// validateRollingUpdate checks maxSurge and maxUnavailable: integers or
// percentages, maxUnavailable at most 100%, and not both zero (the
// rollout could never make progress).
func validateRollingUpdate(ru *appsv1.RollingUpdateDeployment, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	unavail, unavailErrs := intOrPercentValue(ru.MaxUnavailable, path.Child("maxUnavailable"), false)
	surge, surgeErrs := intOrPercentValue(ru.MaxSurge, path.Child("maxSurge"), true)
	errs = append(append(errs, unavailErrs...), surgeErrs...)
	if len(errs) == 0 && unavail == 0 && surge == 0 {
		errs = append(errs, field.Invalid(path.Child("maxUnavailable"), ru.MaxUnavailable.String(), "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

// intOrPercentValue checks a non-negative integer or percentage (up to
// 100% unless over100) and returns its number; nil is 0.
func intOrPercentValue(v *intstr.IntOrString, path *field.Path, over100 bool) (int, field.ErrorList) {
	if v == nil {
		return 0, nil
	}
	if v.Type == intstr.Int {
		return v.IntValue(), apivalidation.ValidateNonnegativeField(int64(v.IntValue()), path)
	}
	num, ok := strings.CutSuffix(v.StrVal, "%")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || strings.HasPrefix(num, "+") {
		return 0, field.ErrorList{field.Invalid(path, v.StrVal, "must be an integer or percentage (e.g '5%')")}
	}
	if n < 0 {
		return 0, apivalidation.ValidateNonnegativeField(int64(n), path)
	}
	if !over100 && n > 100 {
		return 0, field.ErrorList{field.Invalid(path, v.StrVal, "must not be greater than 100%")}
	}
	return n, nil
}

func validateDeploymentStatusUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
	st := &d.Status
	for _, c := range []struct {
		name  string
		value int64
	}{
		{"observedGeneration", st.ObservedGeneration},
		{"replicas", int64(st.Replicas)},
		{"updatedReplicas", int64(st.UpdatedReplicas)},
		{"readyReplicas", int64(st.ReadyReplicas)},
		{"availableReplicas", int64(st.AvailableReplicas)},
		{"unavailableReplicas", int64(st.UnavailableReplicas)},
	} {
		errs = append(errs, apivalidation.ValidateNonnegativeField(c.value, statusPath.Child(c.name))...)
	}
	if st.CollisionCount != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.CollisionCount), statusPath.Child("collisionCount"))...)
	}
	if st.AvailableReplicas > st.Replicas {
		errs = append(errs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than status.replicas"))
	}
	if st.AvailableReplicas > st.ReadyReplicas {
		errs = append(errs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}

func deploymentReplicas(obj runtime.Object) (spec, status int32, selector string) {
	d := obj.(*appsv1.Deployment)
	if d.Spec.Replicas != nil {
		spec = *d.Spec.Replicas
	}
	return spec, d.Status.Replicas, selectorString(d.Spec.Selector)
}

var deploymentColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Ready", "string", "Number of the pod with ready state", false),
	column("Up-to-date", "integer", appsv1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"], false),
	column("Available", "integer", appsv1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"], false),
	ageColumn(),
	column("Containers", "string", "Names of each container in the template.", true),
	column("Images", "string", "Images referenced by each container in the template.", true),
	column("Selector", "string", appsv1.DeploymentSpec{}.SwaggerDoc()["selector"], true),
}

func deploymentRow(d *appsv1.Deployment, now time.Time) []interface{} {
	desired, _, selector := deploymentReplicas(d)
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	return []interface{}{
		d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, desired),
		int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas),
		since(d.CreationTimestamp.Time, now), names, images, selector,
	}
}
