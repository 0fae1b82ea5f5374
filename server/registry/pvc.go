package registry

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Finalizers the API server adds to every new claim and volume, as
// Kubernetes' StorageObjectInUseProtection admission plugin does: a claim
// is removed only once no pod uses it, a volume once no claim is bound
// to it.
const (
	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
	PVProtectionFinalizer  = "kubernetes.io/pv-protection"
)

// accessModes are the access modes Kubernetes supports.
var accessModes = []corev1.PersistentVolumeAccessMode{
	corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod,
}

// volumeModes are the volume modes Kubernetes supports.
var volumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}

var pvcResource = newPVCResource()

// newPVCResource serves core/v1 PersistentVolumeClaims: a pod's request
// for storage, bound to a PersistentVolume that satisfies it.
func newPVCResource() *Resource {
	r := &Resource{
		Name:       "persistentvolumeclaims",
		Singular:   "persistentvolumeclaim",
		Kind:       "PersistentVolumeClaim",
		ShortNames: []string{"pvc"},
		Namespaced: true,
		HasStatus:  true,

		New:     func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
		NewList: func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },

		PrepareForCreate:       mutate(preparePVCForCreate),
		PrepareForUpdate:       mutatePair(preparePVCForUpdate),
		PrepareForStatusUpdate: mutatePair(preparePVCForStatusUpdate),

		ValidateCreate:       check(validatePVC),
		ValidateUpdate:       checkPair(validatePVCUpdate),
		ValidateStatusUpdate: checkPair(validatePVCStatusUpdate),

		// "name" beside metadata.name, as Kubernetes keeps it.
		FieldSet: selectable(func(c *corev1.PersistentVolumeClaim) fields.Set {
			return metaFields(&c.ObjectMeta, fields.Set{"name": c.Name})
		}),
		Columns: pvcColumns,
		Row:     printable(pvcRow),
	}
	notScalable(r)
	return r
}

// preparePVCForCreate starts the claim Pending, protected by the
// pvc-protection finalizer.
func preparePVCForCreate(c *corev1.PersistentVolumeClaim) {
	c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
	defaultVolumeMode(&c.Spec.VolumeMode)
	addFinalizer(&c.ObjectMeta, PVCProtectionFinalizer)
}

func preparePVCForUpdate(c, old *corev1.PersistentVolumeClaim) {
	c.Status = old.Status
	defaultVolumeMode(&c.Spec.VolumeMode)
	c.Generation = old.Generation
}

func preparePVCForStatusUpdate(c, old *corev1.PersistentVolumeClaim) {
	c.Spec = old.Spec
	c.Generation = old.Generation
	if c.Status.Phase == "" {
		c.Status.Phase = corev1.ClaimPending
	}
}

// defaultVolumeMode sets Filesystem, the v1 default of claims and
// volumes.
func defaultVolumeMode(m **corev1.PersistentVolumeMode) {
	if *m == nil {
		*m = ptrTo(corev1.PersistentVolumeFilesystem)
	}
}

// addFinalizer adds f to m's finalizers unless it is there.
func addFinalizer(m *metav1.ObjectMeta, f string) {
	for _, have := range m.Finalizers {
		if have == f {
			return
		}
	}
	m.Finalizers = append(m.Finalizers, f)
}

func validatePVC(c *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validatePVCSpec(&c.Spec, specPath)...)
}

// validatePVCSpec checks a claim's spec as Kubernetes does: access modes
// and a positive storage request are required, volumeMode and
// storageClassName are well formed. StatefulSets check their claim
// templates with it.
func validatePVCSpec(s *corev1.PersistentVolumeClaimSpec, path *field.Path) field.ErrorList {
	errs := validateAccessModes(s.AccessModes, path.Child("accessModes"))
	if s.Selector != nil {
		_, err := metav1.LabelSelectorAsSelector(s.Selector)
		if err != nil {
			errs = append(errs, field.Invalid(path.Child("selector"), s.Selector, err.Error()))
		}
	}
	// Kubernetes names the storage request spec.resources[storage].
	storagePath := path.Child("resources").Key(string(corev1.ResourceStorage))
	others := s.Resources.Requests.DeepCopy()
	if storage, ok := others[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(storagePath, ""))
	} else {
		errs = append(errs, validatePositiveStorage(storage.Sign(), storage.String(), storagePath)...)
		delete(others, corev1.ResourceStorage)
	}
	errs = append(errs, validateResourceList(others, path.Child("resources", "requests"))...)
	errs = append(errs, validateResourceList(s.Resources.Limits, path.Child("resources", "limits"))...)
	if s.StorageClassName != nil && *s.StorageClassName != "" {
		errs = append(errs, validateDNSSubdomain(*s.StorageClassName, path.Child("storageClassName"))...)
	}
	if s.VolumeMode != nil {
		errs = append(errs, validateEnum(*s.VolumeMode, path.Child("volumeMode"), volumeModes...)...)
	}
	if s.VolumeName != "" {
		errs = append(errs, validateDNSSubdomain(s.VolumeName, path.Child("volumeName"))...)
	}
	return errs
}

// validateAccessModes requires at least one known mode, and
// ReadWriteOncePod alone.
func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, path *field.Path) field.ErrorList {
	if len(modes) == 0 {
		return field.ErrorList{field.Required(path, "at least 1 access mode is required")}
	}
	var errs field.ErrorList
	once := false
	for i, m := range modes {
		errs = append(errs, validateEnum(m, path.Index(i), accessModes...)...)
		once = once || m == corev1.ReadWriteOncePod
	}
	if once && len(modes) > 1 {
		errs = append(errs, field.Forbidden(path, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

// validatePositiveStorage requires a storage quantity above zero.
func validatePositiveStorage(sign int, value string, path *field.Path) field.ErrorList {
	if sign <= 0 {
		return field.ErrorList{field.Invalid(path, value, "must be greater than zero")}
	}
	return nil
}

// validatePVCUpdate keeps the spec as created but for the storage
// requested (expansion of a bound claim) and a volumeName set once, by
// the binder, as Kubernetes does.
func validatePVCUpdate(c, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePVCSpec(&c.Spec, specPath)...)
	mutable := c.Spec.DeepCopy()
	if old.Status.Phase == corev1.ClaimBound {
		mutable.Resources.Requests = old.Spec.Resources.Requests
	}
	if old.Spec.VolumeName == "" {
		mutable.VolumeName = old.Spec.VolumeName
	}
	mutable.VolumeAttributesClassName = old.Spec.VolumeAttributesClassName
	if !apiequality.Semantic.DeepEqual(*mutable, old.Spec) {
		errs = append(errs, field.Forbidden(specPath, "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"))
	}
	if old.Status.Phase == corev1.ClaimBound {
		n, was := c.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
		if n.Cmp(was) < 0 {
			errs = append(errs, field.Forbidden(specPath.Child("resources", "requests", "storage"), "field can not be less than previous value"))
		}
	}
	return errs
}

// validatePVCStatusUpdate checks the phase, access modes and capacity a
// binder reports.
func validatePVCStatusUpdate(c, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	st := &c.Status
	errs = append(errs, validateEnum(st.Phase, statusPath.Child("phase"),
		corev1.ClaimPending, corev1.ClaimBound, corev1.ClaimLost)...)
	for i, m := range st.AccessModes {
		errs = append(errs, validateEnum(m, statusPath.Child("accessModes").Index(i), accessModes...)...)
	}
	return append(errs, validateResourceList(st.Capacity, statusPath.Child("capacity"))...)
}

var pvcColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Status", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"], false),
	column("Volume", "string", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"], false),
	column("Capacity", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"], false),
	column("Access Modes", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"], false),
	column("StorageClass", "string", "StorageClass of the pvc", false),
	column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc", false),
	ageColumn(),
	column("VolumeMode", "string", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"], true),
}

// pvcRow prints a claim as kubectl does: capacity and access modes only
// once it names its volume.
func pvcRow(c *corev1.PersistentVolumeClaim, now time.Time) []interface{} {
	phase := string(c.Status.Phase)
	if c.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if c.Spec.VolumeName != "" {
		q := c.Status.Capacity[corev1.ResourceStorage]
		capacity, modes = q.String(), accessModesString(c.Status.AccessModes)
	}
	return []interface{}{
		c.Name, phase, c.Spec.VolumeName, capacity, modes, claimClass(c),
		unsetOr(c.Spec.VolumeAttributesClassName), since(c.CreationTimestamp.Time, now), unsetOr((*string)(c.Spec.VolumeMode)),
	}
}

// claimClass is the claim's storage class: the beta annotation, if any,
// wins over spec.storageClassName, as in Kubernetes.
func claimClass(c *corev1.PersistentVolumeClaim) string {
	if class, ok := c.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return class
	}
	return ptrValue(c.Spec.StorageClassName)
}

// accessModesString abbreviates modes as kubectl does ("RWO,RWX"), in a
// fixed order without duplicates.
func accessModesString(modes []corev1.PersistentVolumeAccessMode) string {
	short := []struct {
		mode corev1.PersistentVolumeAccessMode
		abbr string
	}{
		{corev1.ReadWriteOnce, "RWO"}, {corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"}, {corev1.ReadWriteOncePod, "RWOP"},
	}
	var out []string
	for _, s := range short {
		for _, m := range modes {
			if m == s.mode {
				out = append(out, s.abbr)
				break
			}
		}
	}
	return strings.Join(out, ",")
}

// unsetOr prints *s, or <unset> for nil.
func unsetOr(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}
