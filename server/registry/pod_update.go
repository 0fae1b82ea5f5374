package registry

import (
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podUpdateForbidden is the detail of the error for a pod update that
// changes more than the few mutable fields.
const podUpdateForbidden = "pod updates may not change fields other than " +
	"`spec.containers[*].image`, `spec.initContainers[*].image`, " +
	"`spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations); " +
	"`spec.nodeName` is set through the pods/binding subresource"

func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePodSpec(&pod.Spec, specPath)...)
	return append(errs, validatePodSpecUpdate(&pod.Spec, &old.Spec)...)
}

// validatePodSpecUpdate allows only container images, a shorter
// activeDeadlineSeconds and added tolerations to change. An unset
// nodeName is set only by binding; a set one never changes.
func validatePodSpecUpdate(spec, old *corev1.PodSpec) field.ErrorList {
	var errs field.ErrorList
	if old.NodeName != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(spec.NodeName, old.NodeName, specPath.Child("nodeName"))...)
	}
	errs = append(errs, validateDeadlineUpdate(spec.ActiveDeadlineSeconds, old.ActiveDeadlineSeconds)...)
	errs = append(errs, validateTolerationsUpdate(spec.Tolerations, old.Tolerations)...)
	if !apiequality.Semantic.DeepEqual(*spec, mutablePodSpec(spec, old)) {
		errs = append(errs, field.Forbidden(specPath, podUpdateForbidden))
	}
	return errs
}

// mutablePodSpec returns old with the fields an update may change taken
// from spec; any other difference from spec is forbidden.
func mutablePodSpec(spec, old *corev1.PodSpec) corev1.PodSpec {
	m := *old.DeepCopy()
	copyImages(m.Containers, spec.Containers)
	copyImages(m.InitContainers, spec.InitContainers)
	m.ActiveDeadlineSeconds = spec.ActiveDeadlineSeconds
	m.Tolerations = spec.Tolerations
	if old.NodeName != "" {
		m.NodeName = spec.NodeName // checked on its own
	}
	return m
}

func copyImages(dst, src []corev1.Container) {
	if len(dst) != len(src) {
		return
	}
	for i := range dst {
		dst[i].Image = src[i].Image
	}
}

// validateDeadlineUpdate lets activeDeadlineSeconds be set or shortened,
// never lengthened or removed.
func validateDeadlineUpdate(d, old *int64) field.ErrorList {
	path := specPath.Child("activeDeadlineSeconds")
	switch {
	case old == nil:
		return nil
	case d == nil:
		return field.ErrorList{field.Invalid(path, d, "must not update from a positive integer to nil value")}
	case *d > *old:
		return field.ErrorList{field.Invalid(path, *d, "must be less than or equal to previous value")}
	}
	return nil
}

// validateTolerationsUpdate requires every old toleration to still be
// there; only its tolerationSeconds may change.
func validateTolerationsUpdate(ts, old []corev1.Toleration) field.ErrorList {
	for _, o := range old {
		if !hasToleration(ts, o) {
			return field.ErrorList{field.Forbidden(specPath.Child("tolerations"), "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

func hasToleration(ts []corev1.Toleration, want corev1.Toleration) bool {
	for _, t := range ts {
		want.TolerationSeconds = t.TolerationSeconds
		if reflect.DeepEqual(t, want) {
			return true
		}
	}
	return false
}

func validatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePodStatus(&pod.Status, &pod.Spec)...)
	if terminalPhase(old.Status.Phase) && pod.Status.Phase != old.Status.Phase {
		errs = append(errs, field.Forbidden(statusPath.Child("phase"),
			fmt.Sprintf("may not change from terminal phase %s", old.Status.Phase)))
	}
	return errs
}

func terminalPhase(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}

func validatePodStatus(st *corev1.PodStatus, spec *corev1.PodSpec) field.ErrorList {
	errs := validateOptionalEnum(st.Phase, statusPath.Child("phase"),
		corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown)
	if st.PodIP != "" {
		errs = append(errs, validation.IsValidIP(statusPath.Child("podIP"), st.PodIP)...)
	}
	if st.HostIP != "" {
		errs = append(errs, validation.IsValidIP(statusPath.Child("hostIP"), st.HostIP)...)
	}
	for i, ip := range st.PodIPs {
		errs = append(errs, validateIP(ip.IP, statusPath.Child("podIPs").Index(i).Child("ip"))...)
	}
	if st.NominatedNodeName != "" {
		errs = append(errs, validateDNSSubdomain(st.NominatedNodeName, statusPath.Child("nominatedNodeName"))...)
	}
	errs = append(errs, validateContainerStatuses(st.InitContainerStatuses, spec.InitContainers, statusPath.Child("initContainerStatuses"))...)
	return append(errs, validateContainerStatuses(st.ContainerStatuses, spec.Containers, statusPath.Child("containerStatuses"))...)
}

// validateContainerStatuses requires each status to name a container of
// the spec.
func validateContainerStatuses(sts []corev1.ContainerStatus, cs []corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, st := range sts {
		found := false
		for _, c := range cs {
			found = found || c.Name == st.Name
		}
		if !found {
			errs = append(errs, field.NotFound(path.Index(i).Child("name"), st.Name))
		}
		if st.RestartCount < 0 {
			errs = append(errs, field.Invalid(path.Index(i).Child("restartCount"), st.RestartCount, apivalidation.IsNegativeErrorMsg))
		}
	}
	return errs
}
