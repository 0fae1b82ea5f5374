package registry

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// statefulSetResource serves apps/v1 StatefulSets: pods with stable names
// (NAME-0, NAME-1, …) made in order from one template.
var statefulSetResource = &Resource{
	Name:       "statefulsets",
	Singular:   "statefulset",
	Kind:       "StatefulSet",
	Group:      GroupApps,
	ShortNames: []string{"sts"},
	Namespaced: true,
	HasStatus:  true,
	HasScale:   true,

	New:     func() runtime.Object { return &appsv1.StatefulSet{} },
	NewList: func() runtime.Object { return &appsv1.StatefulSetList{} },

	PrepareForCreate:       mutate(prepareStatefulSetForCreate),
	PrepareForUpdate:       mutatePair(prepareStatefulSetForUpdate),
	PrepareForStatusUpdate: mutatePair(prepareStatefulSetForStatusUpdate),

	ValidateCreate:       check(validateStatefulSet),
	ValidateUpdate:       checkPair(validateStatefulSetUpdate),
	ValidateStatusUpdate: checkPair(validateStatefulSetStatusUpdate),

	FieldSet: selectable(func(s *appsv1.StatefulSet) fields.Set { return metaFields(&s.ObjectMeta, nil) }),
	Columns:  statefulSetColumns,
	Row:      printable(statefulSetRow),

	Replicas:    statefulSetReplicas,
	SetReplicas: func(obj runtime.Object, n int32) { obj.(*appsv1.StatefulSet).Spec.Replicas = &n },
}

func prepareStatefulSetForCreate(s *appsv1.StatefulSet) {
	defaultStatefulSet(s)
	s.Generation = 1
	s.Status = appsv1.StatefulSetStatus{}
}

func prepareStatefulSetForUpdate(s, old *appsv1.StatefulSet) {
	defaultStatefulSet(s)
	s.Status = old.Status
	nextGeneration(&s.ObjectMeta, &old.ObjectMeta, s.Spec, old.Spec)
}

func prepareStatefulSetForStatusUpdate(s, old *appsv1.StatefulSet) {
	s.Spec = old.Spec
	s.Generation = old.Generation
}

// defaultStatefulSet applies the apps/v1 defaults: one replica, ordered
// pod management, a rolling update from partition 0 with one pod
// unavailable at a time, 10 revisions kept, claims retained; claim
// templates get the claim defaults (Filesystem, phase Pending).
func defaultStatefulSet(s *appsv1.StatefulSet) {
	sp := &s.Spec
	if sp.Replicas == nil {
		sp.Replicas = ptrTo[int32](1)
	}
	if sp.PodManagementPolicy == "" {
		sp.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if sp.UpdateStrategy.Type == "" {
		sp.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
	}
	if sp.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		if sp.UpdateStrategy.RollingUpdate == nil {
			sp.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
		ru := sp.UpdateStrategy.RollingUpdate
		if ru.Partition == nil {
			ru.Partition = ptrTo[int32](0)
		}
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptrTo(intstr.FromInt32(1))
		}
	}
	if sp.RevisionHistoryLimit == nil {
		sp.RevisionHistoryLimit = ptrTo[int32](10)
	}
	if sp.PersistentVolumeClaimRetentionPolicy == nil {
		sp.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	pvc := sp.PersistentVolumeClaimRetentionPolicy
	if pvc.WhenDeleted == "" {
		pvc.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if pvc.WhenScaled == "" {
		pvc.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	for i := range sp.VolumeClaimTemplates {
		c := &sp.VolumeClaimTemplates[i]
		defaultVolumeMode(&c.Spec.VolumeMode)
		if c.Status.Phase == "" {
			c.Status.Phase = corev1.ClaimPending
		}
	}
	defaultPodSpec(&sp.Template.Spec)
}

func validateStatefulSet(s *appsv1.StatefulSet) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, true, apivalidation.NameIsDNSLabel)
	return append(errs, validateStatefulSetSpec(&s.Spec)...)
}

// validateStatefulSetUpdate allows changes of replicas, ordinals, the
// template, the update strategy, the history limit, the claim retention
// policy and minReadySeconds only, as Kubernetes does.
func validateStatefulSetUpdate(s, old *appsv1.StatefulSet) field.ErrorList {
	errs := validateMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateStatefulSetSpec(&s.Spec)...)
	mutable := s.Spec.DeepCopy()
	mutable.Replicas = old.Spec.Replicas
	mutable.Ordinals = old.Spec.Ordinals
	mutable.Template = old.Spec.Template
	mutable.UpdateStrategy = old.Spec.UpdateStrategy
	mutable.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	mutable.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	mutable.MinReadySeconds = old.Spec.MinReadySeconds
	if !apiequality.Semantic.DeepEqual(*mutable, old.Spec) {
		errs = append(errs, field.Forbidden(specPath, "updates to statefulset spec for fields other than 'replicas', 'ordinals', "+
			"'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return errs
}

func validateStatefulSetSpec(s *appsv1.StatefulSetSpec) field.ErrorList {
	errs := validateEnum(s.PodManagementPolicy, specPath.Child("podManagementPolicy"),
		appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)
	errs = append(errs, validateStatefulSetStrategy(&s.UpdateStrategy, specPath.Child("updateStrategy"))...)
	errs = append(errs, validateReplicas(s.Replicas, specPath.Child("replicas"))...)
	if s.Ordinals != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(s.Ordinals.Start), specPath.Child("ordinals", "start"))...)
	}
	if s.ServiceName != "" {
		errs = append(errs, validateDNSLabel(s.ServiceName, specPath.Child("serviceName"))...)
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if p := s.PersistentVolumeClaimRetentionPolicy; p != nil {
		path := specPath.Child("persistentVolumeClaimRetentionPolicy")
		kinds := []appsv1.PersistentVolumeClaimRetentionPolicyType{
			appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		}
		errs = append(errs, validateEnum(p.WhenDeleted, path.Child("whenDeleted"), kinds...)...)
		errs = append(errs, validateEnum(p.WhenScaled, path.Child("whenScaled"), kinds...)...)
	}
	for i := range s.VolumeClaimTemplates {
		errs = append(errs, validatePVCSpec(&s.VolumeClaimTemplates[i].Spec, specPath.Child("volumeClaimTemplates").Index(i).Child("spec"))...)
	}
	sel, selErrs := validateAppsSelector(s.Selector, "statefulset")
	errs = append(errs, selErrs...)
	return append(errs, validateRCTemplate(withClaimVolumes(s), sel, "StatefulSet", specPath.Child("template"))...)
}

// withClaimVolumes returns the template as its pods get it: each claim
// template becomes a volume of that name (replacing a volume of the
// template with the same name), so that containers may mount it.
func withClaimVolumes(s *appsv1.StatefulSetSpec) *corev1.PodTemplateSpec {
	if len(s.VolumeClaimTemplates) == 0 {
		return &s.Template
	}
	t := s.Template.DeepCopy()
	t.Spec.Volumes = ClaimVolumes(s.VolumeClaimTemplates, t.Spec.Volumes, func(name string) string { return name })
	return t
}

// ClaimVolumes returns vols with one persistentVolumeClaim volume per
// claim template, named as the template and using the claim
// claimName(template name); a volume of vols with a template's name is
// replaced, as Kubernetes' StatefulSet controller does.
func ClaimVolumes(templates []corev1.PersistentVolumeClaim, vols []corev1.Volume, claimName func(string) string) []corev1.Volume {
	out := make([]corev1.Volume, 0, len(templates)+len(vols))
	claims := make(map[string]bool, len(templates))
	for i := range templates {
		name := templates[i].Name
		claims[name] = true
		out = append(out, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(name)},
		}})
	}
	for _, v := range vols {
		if !claims[v.Name] {
			out = append(out, v)
		}
	}
	return out
}

// validateStatefulSetStrategy checks the update strategy: OnDelete takes
// no rollingUpdate; a rolling update's partition is not negative and its
// maxUnavailable is a positive integer or a percentage up to 100%.
func validateStatefulSetStrategy(st *appsv1.StatefulSetUpdateStrategy, path *field.Path) field.ErrorList {
	errs := validateEnum(st.Type, path.Child("type"), appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)
	ru := st.RollingUpdate
	if ru == nil {
		return errs
	}
	rpath := path.Child("rollingUpdate")
	if st.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return append(errs, field.Invalid(rpath, ru, fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
	}
	if ru.Partition != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*ru.Partition), rpath.Child("partition"))...)
	}
	if ru.MaxUnavailable != nil {
		n, nErrs := intOrPercentValue(ru.MaxUnavailable, rpath.Child("maxUnavailable"), false)
		errs = append(errs, nErrs...)
		if len(nErrs) == 0 && n == 0 {
			errs = append(errs, field.Invalid(rpath.Child("maxUnavailable"), ru.MaxUnavailable.String(), "must be greater than zero"))
		}
	}
	return errs
}

// validateStatefulSetStatusUpdate requires counts that are not negative
// and that nest within status.replicas.
func validateStatefulSetStatusUpdate(s, old *appsv1.StatefulSet) field.ErrorList {
	errs := validateMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	st := &s.Status
	counts := []struct {
		name  string
		value int32
	}{
		{"replicas", st.Replicas},
		{"readyReplicas", st.ReadyReplicas},
		{"currentReplicas", st.CurrentReplicas},
		{"updatedReplicas", st.UpdatedReplicas},
		{"availableReplicas", st.AvailableReplicas},
	}
	for _, c := range counts {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(c.value), statusPath.Child(c.name))...)
		if c.name != "replicas" && c.value > st.Replicas {
			errs = append(errs, field.Invalid(statusPath.Child(c.name), c.value, "cannot be greater than status.replicas"))
		}
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(st.ObservedGeneration, statusPath.Child("observedGeneration"))...)
	if st.CollisionCount != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.CollisionCount), statusPath.Child("collisionCount"))...)
	}
	if st.AvailableReplicas > st.ReadyReplicas {
		errs = append(errs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than status.readyReplicas"))
	}
	if n, was := ptrValue(st.CollisionCount), ptrValue(old.Status.CollisionCount); n < was {
		errs = append(errs, field.Invalid(statusPath.Child("collisionCount"), n, "cannot be decremented"))
	}
	return errs
}

// ptrValue is *p, or zero for nil.
func ptrValue[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}

func statefulSetReplicas(obj runtime.Object) (spec, status int32, selector string) {
	s := obj.(*appsv1.StatefulSet)
	if s.Spec.Replicas != nil {
		spec = *s.Spec.Replicas
	}
	return spec, s.Status.Replicas, selectorString(s.Spec.Selector)
}

var statefulSetColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Ready", "string", "Number of the pod with ready state", false),
	ageColumn(),
	column("Containers", "string", "Names of each container in the template.", true),
	column("Images", "string", "Images referenced by each container in the template.", true),
}

func statefulSetRow(s *appsv1.StatefulSet, now time.Time) []interface{} {
	desired, _, _ := statefulSetReplicas(s)
	names, images := containerCells(s.Spec.Template.Spec.Containers)
	return []interface{}{
		s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, desired),
		since(s.CreationTimestamp.Time, now), names, images,
	}
}
