package registry

import (
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PrepareResizeUpdate makes pod a write of the pods/resize subresource:
// old's spec and status with the resources and resize policies of pod's
// containers, matched by name; anything else the write changes is dropped.
// A resize changes the spec, so the generation moves on.
func PrepareResizeUpdate(pod, old *corev1.Pod) {
	spec := old.Spec.DeepCopy()
	takeResizable(spec.Containers, pod.Spec.Containers)
	takeResizable(spec.InitContainers, pod.Spec.InitContainers)
	pod.Spec = *spec
	pod.Status = old.Status
	nextGeneration(&pod.ObjectMeta, &old.ObjectMeta, pod.Spec, old.Spec)
}

// takeResizable copies the resources and resize policy of each container
// of src into the container of dst with its name.
func takeResizable(dst, src []corev1.Container) {
	for i := range dst {
		for j := range src {
			if src[j].Name != dst[i].Name {
				continue
			}
			dst[i].Resources = *src[j].Resources.DeepCopy()
			dst[i].ResizePolicy = append([]corev1.ContainerResizePolicy(nil), src[j].ResizePolicy...)
			defaultRequests(&dst[i].Resources)
		}
	}
}

// ValidateResizeUpdate checks a write of the pods/resize subresource, as
// Kubernetes does: the new resources must be valid; only the cpu and
// memory of app and sidecar containers may change, and none may be
// removed; the pod's QoS class must stay the same.
func ValidateResizeUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePodSpec(&pod.Spec, specPath)...)
	if old.Spec.OS != nil && old.Spec.OS.Name == corev1.Windows {
		return append(errs, field.Forbidden(field.NewPath(""), "windows pods cannot be resized"))
	}
	if !apiequality.Semantic.DeepEqual(pod.Spec.Resources, old.Spec.Resources) {
		errs = append(errs, field.Forbidden(specPath.Child("resources"), "pod-level resources cannot be resized"))
	}
	if qosClass(&pod.Spec) != qosClass(&old.Spec) {
		errs = append(errs, field.Invalid(specPath, qosClass(&pod.Spec), "Pod QOS Class may not change as a result of resizing"))
	}
	if !resizeSupported(old) {
		errs = append(errs, field.Forbidden(specPath, "Pod running on node without support for resize"))
	}
	for i := range old.Spec.Containers {
		errs = append(errs, validateContainerResize(&pod.Spec.Containers[i], &old.Spec.Containers[i],
			specPath.Child("containers").Index(i))...)
	}
	for i := range old.Spec.InitContainers {
		c, o := &pod.Spec.InitContainers[i], &old.Spec.InitContainers[i]
		path := specPath.Child("initContainers").Index(i)
		if !isRestartable(o) {
			if !apiequality.Semantic.DeepEqual(c, o) {
				errs = append(errs, field.Forbidden(path.Child("resources"), "resources for non-sidecar init containers are immutable"))
			}
			continue
		}
		errs = append(errs, validateContainerResize(c, o, path)...)
	}
	return errs
}

// validateContainerResize allows a container's cpu and memory requests
// and limits to be set or changed, not removed, and nothing else.
func validateContainerResize(c, old *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	resPath := path.Child("resources")
	if removed(c.Resources.Requests, old.Resources.Requests) {
		errs = append(errs, field.Forbidden(resPath.Child("requests"), "resource requests cannot be removed"))
	}
	if removed(c.Resources.Limits, old.Resources.Limits) {
		errs = append(errs, field.Forbidden(resPath.Child("limits"), "resource limits cannot be removed"))
	}
	if !apiequality.Semantic.DeepEqual(withoutCPUMemory(c.Resources), withoutCPUMemory(old.Resources)) {
		errs = append(errs, field.Forbidden(resPath, "only cpu and memory resources are mutable"))
	}
	return errs
}

// removed tells whether a resource of old is missing from l.
func removed(l, old corev1.ResourceList) bool {
	for name := range old {
		if _, ok := l[name]; !ok {
			return true
		}
	}
	return false
}

// withoutCPUMemory is r without its cpu and memory entries.
func withoutCPUMemory(r corev1.ResourceRequirements) corev1.ResourceRequirements {
	strip := func(l corev1.ResourceList) corev1.ResourceList {
		out := corev1.ResourceList{}
		for name, q := range l {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
				out[name] = q
			}
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: strip(r.Requests), Limits: strip(r.Limits), Claims: r.Claims}
}

// resizeSupported tells whether the pod's node reports the resources of
// its running containers, which is how a node shows it can resize them.
// A pod with no running container is assumed to be on such a node.
func resizeSupported(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil {
			return cs.Resources != nil
		}
	}
	return true
}

func isRestartable(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}
