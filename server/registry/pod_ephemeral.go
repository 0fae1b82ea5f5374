package registry

import (
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var ephemeralPath = specPath.Child("ephemeralContainers")

// PrepareEphemeralContainersUpdate makes pod a write of the
// pods/ephemeralcontainers subresource: old's spec and status with pod's
// ephemeral containers, defaulted. A new ephemeral container is a change
// of the spec, so the generation moves on.
func PrepareEphemeralContainersUpdate(pod, old *corev1.Pod) {
	ecs := pod.Spec.EphemeralContainers
	pod.Spec = *old.Spec.DeepCopy()
	pod.Spec.EphemeralContainers = ecs
	pod.Status = old.Status
	for i := range ecs {
		defaultEphemeralContainer(&ecs[i])
	}
	nextGeneration(&pod.ObjectMeta, &old.ObjectMeta, pod.Spec, old.Spec)
}

func defaultEphemeralContainer(ec *corev1.EphemeralContainer) {
	c := &ec.EphemeralContainerCommon
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Env {
		if src := c.Env[i].ValueFrom; src != nil && src.FieldRef != nil && src.FieldRef.APIVersion == "" {
			src.FieldRef.APIVersion = "v1"
		}
	}
}

// ValidateEphemeralContainersUpdate checks a write of the
// pods/ephemeralcontainers subresource: ephemeral containers may only be
// added, each valid as a container without ports, probes, lifecycle,
// resources or a restart policy, named uniquely among all the pod's
// containers, and targeting one of its containers if any.
func ValidateEphemeralContainersUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	ecs, oldECs := pod.Spec.EphemeralContainers, old.Spec.EphemeralContainers
	for i, o := range oldECs {
		if i >= len(ecs) || !apiequality.Semantic.DeepEqual(ecs[i], o) {
			errs = append(errs, field.Forbidden(ephemeralPath.Index(i),
				"existing ephemeral containers may not be changed or removed"))
			return errs
		}
	}
	return append(errs, validateEphemeralContainers(&pod.Spec)...)
}

func validateEphemeralContainers(spec *corev1.PodSpec) field.ErrorList {
	var errs field.ErrorList
	names, volumes, targets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			names[c.Name], targets[c.Name] = true, true
		}
	}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	for i := range spec.EphemeralContainers {
		ec := &spec.EphemeralContainers[i]
		path := ephemeralPath.Index(i)
		c := corev1.Container(ec.EphemeralContainerCommon)
		errs = append(errs, validateContainer(&c, names, volumes, path)...)
		errs = append(errs, ephemeralForbidden(&c, path)...)
		if t := ec.TargetContainerName; t != "" && !targets[t] {
			errs = append(errs, field.NotFound(path.Child("targetContainerName"), t))
		}
	}
	return errs
}

// ephemeralForbidden lists the container fields an ephemeral container
// may not set: it is not part of the pod's serving or resource accounting.
func ephemeralForbidden(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	forbidden := []struct {
		name string
		set  bool
	}{
		{"ports", len(c.Ports) > 0},
		{"livenessProbe", c.LivenessProbe != nil},
		{"readinessProbe", c.ReadinessProbe != nil},
		{"startupProbe", c.StartupProbe != nil},
		{"lifecycle", c.Lifecycle != nil},
		{"resources", len(c.Resources.Limits) > 0 || len(c.Resources.Requests) > 0 || len(c.Resources.Claims) > 0},
		{"resizePolicy", len(c.ResizePolicy) > 0},
		{"restartPolicy", c.RestartPolicy != nil},
		{"restartPolicyRules", len(c.RestartPolicyRules) > 0},
	}
	for _, f := range forbidden {
		if f.set {
			errs = append(errs, field.Forbidden(path.Child(f.name), "cannot be set for an Ephemeral Container"))
		}
	}
	for i, m := range c.VolumeMounts {
		if m.SubPath != "" || m.SubPathExpr != "" {
			errs = append(errs, field.Forbidden(path.Child("volumeMounts").Index(i).Child("subPath"), "cannot be set for an Ephemeral Container"))
		}
	}
	return errs
}
