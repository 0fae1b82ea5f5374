package registry

import (
	"path"
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

// reclaimPolicies are the persistentVolumeReclaimPolicy values Kubernetes
// supports.
var reclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{
	corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain,
}

// hostPathTypes are the types of a hostPath volume.
var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
	corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

var pvResource = newPVResource()

// newPVResource serves core/v1 PersistentVolumes: cluster-scoped pieces
// of storage that claims bind to.
func newPVResource() *Resource {
	r := &Resource{
		Name:       "persistentvolumes",
		Singular:   "persistentvolume",
		Kind:       "PersistentVolume",
		ShortNames: []string{"pv"},
		HasStatus:  true,

		New:     func() runtime.Object { return &corev1.PersistentVolume{} },
		NewList: func() runtime.Object { return &corev1.PersistentVolumeList{} },

		PrepareForCreate:       mutate(preparePVForCreate),
		PrepareForUpdate:       mutatePair(preparePVForUpdate),
		PrepareForStatusUpdate: mutatePair(preparePVForStatusUpdate),

		ValidateCreate:       check(validatePV),
		ValidateUpdate:       checkPair(validatePVUpdate),
		ValidateStatusUpdate: checkPair(validatePVStatusUpdate),

		// "name" beside metadata.name, as Kubernetes keeps it.
		FieldSet: selectable(func(v *corev1.PersistentVolume) fields.Set {
			return metaFields(&v.ObjectMeta, fields.Set{"name": v.Name})
		}),
		Columns: pvColumns,
		Row:     printable(pvRow),
	}
	notScalable(r)
	return r
}

// preparePVForCreate starts the volume Pending (the binder makes it
// Available), protected by the pv-protection finalizer.
func preparePVForCreate(v *corev1.PersistentVolume) {
	v.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
	if !v.CreationTimestamp.IsZero() {
		v.Status.LastPhaseTransitionTime = ptrTo(v.CreationTimestamp)
	}
	defaultPVSpec(&v.Spec)
	addFinalizer(&v.ObjectMeta, PVProtectionFinalizer)
}

func preparePVForUpdate(v, old *corev1.PersistentVolume) {
	v.Status = old.Status
	defaultPVSpec(&v.Spec)
	v.Generation = old.Generation
}

// preparePVForStatusUpdate keeps the spec; the writer of a new phase
// stamps lastPhaseTransitionTime.
func preparePVForStatusUpdate(v, old *corev1.PersistentVolume) {
	v.Spec = old.Spec
	v.Generation = old.Generation
}

// defaultPVSpec applies the v1 defaults: Retain, Filesystem.
func defaultPVSpec(s *corev1.PersistentVolumeSpec) {
	if s.PersistentVolumeReclaimPolicy == "" {
		s.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	defaultVolumeMode(&s.VolumeMode)
	if h := s.HostPath; h != nil && h.Type == nil {
		h.Type = ptrTo(corev1.HostPathUnset)
	}
}

func validatePV(v *corev1.PersistentVolume) field.ErrorList {
	errs := validateMeta(&v.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	return append(errs, validatePVSpec(&v.Spec)...)
}

// validatePVSpec checks a volume's spec as Kubernetes does: access modes,
// a positive storage capacity (and nothing else), exactly one source,
// the reclaim policy, volumeMode and storageClassName. A local volume
// needs node affinity, since it exists on some nodes only.
func validatePVSpec(s *corev1.PersistentVolumeSpec) field.ErrorList {
	errs := validateAccessModes(s.AccessModes, specPath.Child("accessModes"))
	cpath := specPath.Child("capacity")
	if len(s.Capacity) == 0 {
		errs = append(errs, field.Required(cpath, ""))
	}
	for _, name := range sortedResourceNames(s.Capacity) {
		if name != corev1.ResourceStorage {
			errs = append(errs, field.NotSupported(cpath.Key(string(name)), name, []corev1.ResourceName{corev1.ResourceStorage}))
			continue
		}
		q := s.Capacity[name]
		errs = append(errs, validatePositiveStorage(q.Sign(), q.String(), cpath.Key(string(name)))...)
	}
	errs = append(errs, validateOptionalEnum(s.PersistentVolumeReclaimPolicy, specPath.Child("persistentVolumeReclaimPolicy"), reclaimPolicies...)...)
	if s.StorageClassName != "" {
		errs = append(errs, validateDNSSubdomain(s.StorageClassName, specPath.Child("storageClassName"))...)
	}
	if s.VolumeMode != nil {
		errs = append(errs, validateEnum(*s.VolumeMode, specPath.Child("volumeMode"), volumeModes...)...)
	}
	if r := s.ClaimRef; r != nil {
		rpath := specPath.Child("claimRef")
		if r.Name == "" {
			errs = append(errs, field.Required(rpath.Child("name"), ""))
		}
		if r.Namespace == "" {
			errs = append(errs, field.Required(rpath.Child("namespace"), ""))
		}
	}
	return append(errs, validatePVSource(s)...)
}

// validatePVSource requires exactly one volume source and checks the
// hostPath and local ones, the sources a node of this cluster mounts,
// and the CSI one, which names a driver and its volume.
func validatePVSource(s *corev1.PersistentVolumeSpec) field.ErrorList {
	set := setMembers(&s.PersistentVolumeSource)
	switch {
	case len(set) == 0:
		return field.ErrorList{field.Required(specPath, "must specify a volume type")}
	case len(set) > 1:
		return field.ErrorList{field.Forbidden(specPath.Child(set[1]), "may not specify more than 1 volume type")}
	}
	var errs field.ErrorList
	if h := s.HostPath; h != nil {
		p := specPath.Child("hostPath")
		errs = append(errs, validateVolumePath(h.Path, p.Child("path"))...)
		if h.Type != nil {
			errs = append(errs, validateOptionalEnum(*h.Type, p.Child("type"), hostPathTypes...)...)
		}
	}
	if l := s.Local; l != nil {
		errs = append(errs, validateVolumePath(l.Path, specPath.Child("local", "path"))...)
		if s.NodeAffinity == nil || s.NodeAffinity.Required == nil {
			errs = append(errs, field.Required(specPath.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	}
	if c := s.CSI; c != nil {
		p := specPath.Child("csi")
		errs = append(errs, validateCSIDriverName(c.Driver, p.Child("driver"))...)
		if c.VolumeHandle == "" {
			errs = append(errs, field.Required(p.Child("volumeHandle"), ""))
		}
	}
	if a := s.NodeAffinity; a != nil && a.Required != nil && len(a.Required.NodeSelectorTerms) == 0 {
		errs = append(errs, field.Required(specPath.Child("nodeAffinity", "required", "nodeSelectorTerms"), "must have at least one node selector term"))
	}
	return errs
}

// validateVolumePath requires an absolute path without "..", as
// Kubernetes does for hostPath and local volumes.
func validateVolumePath(p string, fp *field.Path) field.ErrorList {
	switch {
	case p == "":
		return field.ErrorList{field.Required(fp, "")}
	case !path.IsAbs(p):
		return field.ErrorList{field.Invalid(fp, p, "must be an absolute path")}
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return field.ErrorList{field.Invalid(fp, p, "must not contain '..'")}
		}
	}
	return nil
}

// validatePVUpdate keeps the volume's source, mode and node affinity as
// created.
func validatePVUpdate(v, old *corev1.PersistentVolume) field.ErrorList {
	errs := validateMetaUpdate(&v.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePVSpec(&v.Spec)...)
	if !apiequality.Semantic.DeepEqual(v.Spec.PersistentVolumeSource, old.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(specPath.Child("persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
	}
	if !apiequality.Semantic.DeepEqual(v.Spec.VolumeMode, old.Spec.VolumeMode) {
		errs = append(errs, field.Invalid(specPath.Child("volumeMode"), ptrValue(v.Spec.VolumeMode), "field is immutable"))
	}
	if old.Spec.NodeAffinity != nil && !apiequality.Semantic.DeepEqual(v.Spec.NodeAffinity, old.Spec.NodeAffinity) {
		errs = append(errs, field.Invalid(specPath.Child("nodeAffinity"), "", "field is immutable"))
	}
	return errs
}

func validatePVStatusUpdate(v, old *corev1.PersistentVolume) field.ErrorList {
	errs := validateMetaUpdate(&v.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateOptionalEnum(v.Status.Phase, statusPath.Child("phase"),
		corev1.VolumePending, corev1.VolumeAvailable, corev1.VolumeBound, corev1.VolumeReleased, corev1.VolumeFailed)...)
}

var pvColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Capacity", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"], false),
	column("Access Modes", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"], false),
	column("Reclaim Policy", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"], false),
	column("Status", "string", corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"], false),
	column("Claim", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"], false),
	column("StorageClass", "string", "StorageClass of the pv", false),
	column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv", false),
	column("Reason", "string", corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"], false),
	ageColumn(),
	column("VolumeMode", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"], true),
}

func pvRow(v *corev1.PersistentVolume, now time.Time) []interface{} {
	claim := ""
	if r := v.Spec.ClaimRef; r != nil {
		claim = r.Namespace + "/" + r.Name
	}
	phase := string(v.Status.Phase)
	if v.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	q := v.Spec.Capacity[corev1.ResourceStorage]
	return []interface{}{
		v.Name, q.String(), accessModesString(v.Spec.AccessModes), string(v.Spec.PersistentVolumeReclaimPolicy),
		phase, claim, volumeClass(v), unsetOr(v.Spec.VolumeAttributesClassName), v.Status.Reason,
		since(v.CreationTimestamp.Time, now), unsetOr((*string)(v.Spec.VolumeMode)),
	}
}

// volumeClass is the volume's storage class: the beta annotation, if
// any, wins over spec.storageClassName, as in Kubernetes.
func volumeClass(v *corev1.PersistentVolume) string {
	if class, ok := v.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return class
	}
	return v.Spec.StorageClassName
}
