package registry

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateContainers checks the init and app containers of spec. Their
// names share one namespace; volumes are the pod's valid volume names.
func validateContainers(spec *corev1.PodSpec, volumes map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), ""))
	}
	names := map[string]bool{}
	initPath := path.Child("initContainers")
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		errs = append(errs, validateContainer(c, names, volumes, initPath.Index(i))...)
		errs = append(errs, validateResizePolicy(c.ResizePolicy, spec.RestartPolicy, initPath.Index(i).Child("resizePolicy"))...)
		if c.RestartPolicy != nil {
			errs = append(errs, validateEnum(*c.RestartPolicy, initPath.Index(i).Child("restartPolicy"), corev1.ContainerRestartPolicyAlways)...)
		}
	}
	appPath := path.Child("containers")
	for i := range spec.Containers {
		c := &spec.Containers[i]
		errs = append(errs, validateContainer(c, names, volumes, appPath.Index(i))...)
		errs = append(errs, validateResizePolicy(c.ResizePolicy, spec.RestartPolicy, appPath.Index(i).Child("resizePolicy"))...)
	}
	return append(errs, validateHostPorts(spec.Containers, appPath)...)
}

func validateContainer(c *corev1.Container, names, volumes map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	namePath := path.Child("name")
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(namePath, ""))
	case names[c.Name]:
		errs = append(errs, field.Duplicate(namePath, c.Name))
	default:
		errs = append(errs, validateDNSLabel(c.Name, namePath)...)
	}
	names[c.Name] = true
	imagePath := path.Child("image")
	switch {
	case c.Image == "":
		errs = append(errs, field.Required(imagePath, ""))
	case strings.TrimSpace(c.Image) != c.Image:
		errs = append(errs, field.Invalid(imagePath, c.Image, "must not have leading or trailing whitespace"))
	}
	errs = append(errs, validateEnum(c.ImagePullPolicy, path.Child("imagePullPolicy"),
		corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	errs = append(errs, validateEnum(c.TerminationMessagePolicy, path.Child("terminationMessagePolicy"),
		corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)
	errs = append(errs, validateContainerPorts(c.Ports, path.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, path.Child("env"))...)
	errs = append(errs, validateResources(&c.Resources, path.Child("resources"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, path.Child("volumeMounts"))...)
	errs = append(errs, validateProbe(c.LivenessProbe, path.Child("livenessProbe"))...)
	errs = append(errs, validateProbe(c.ReadinessProbe, path.Child("readinessProbe"))...)
	return append(errs, validateProbe(c.StartupProbe, path.Child("startupProbe"))...)
}

func validateContainerPorts(ports []corev1.ContainerPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		pp := path.Index(i)
		if p.Name != "" {
			errs = append(errs, validatePortName(p.Name, pp.Child("name"))...)
			if names[p.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			}
			names[p.Name] = true
		}
		errs = append(errs, validatePort(p.ContainerPort, pp.Child("containerPort"))...)
		if p.HostPort != 0 {
			errs = append(errs, messages(pp.Child("hostPort"), p.HostPort, validation.IsValidPortNum(int(p.HostPort)))...)
		}
		if p.HostIP != "" {
			errs = append(errs, validation.IsValidIP(pp.Child("hostIP"), p.HostIP)...)
		}
		errs = append(errs, validateEnum(p.Protocol, pp.Child("protocol"), protocols...)...)
	}
	return errs
}

// validateHostPorts rejects two containers of a pod asking for the same
// host port, address and protocol.
func validateHostPorts(containers []corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, c := range containers {
		for j, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d", p.Protocol, p.HostIP, p.HostPort)
			if seen[key] {
				errs = append(errs, field.Duplicate(path.Index(i).Child("ports").Index(j).Child("hostPort"), key))
			}
			seen[key] = true
		}
	}
	return errs
}

func validateEnv(env []corev1.EnvVar, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		ep := path.Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			errs = append(errs, messages(ep.Child("name"), e.Name, validation.IsRelaxedEnvVarName(e.Name))...)
		}
		if e.ValueFrom == nil {
			continue
		}
		srcPath := ep.Child("valueFrom")
		switch n := len(setMembers(e.ValueFrom)); {
		case n == 0:
			errs = append(errs, field.Invalid(srcPath, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(srcPath, "", "may not have more than one field specified at a time"))
		case e.Value != "":
			errs = append(errs, field.Invalid(srcPath, "", "may not be specified when `value` is not empty"))
		}
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := path.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(mp.Child("name"), ""))
		case !volumes[m.Name]:
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		case paths[m.MountPath]:
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[m.MountPath] = true
		if m.SubPath != "" {
			errs = append(errs, validateSubPath(m.SubPath, mp.Child("subPath"))...)
		}
	}
	return errs
}

// validateSubPath requires a relative path that stays inside the volume.
func validateSubPath(p string, fldPath *field.Path) field.ErrorList {
	if path.IsAbs(p) {
		return field.ErrorList{field.Invalid(fldPath, p, "must be a relative path")}
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return field.ErrorList{field.Invalid(fldPath, p, "must not contain '..'")}
		}
	}
	return nil
}

// validateProbe requires exactly one handler and sane numbers.
func validateProbe(p *corev1.Probe, path *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	var errs field.ErrorList
	switch set := setMembers(&p.ProbeHandler); {
	case len(set) == 0:
		errs = append(errs, field.Required(path, "must specify a handler type"))
	case len(set) > 1:
		errs = append(errs, field.Forbidden(path.Child(set[1]), "may not specify more than 1 handler type"))
	}
	if h := p.HTTPGet; h != nil {
		errs = append(errs, validatePortRef(h.Port, path.Child("httpGet", "port"))...)
	}
	if t := p.TCPSocket; t != nil {
		errs = append(errs, validatePortRef(t.Port, path.Child("tcpSocket", "port"))...)
	}
	numbers := []struct {
		name  string
		value int32
		min   int32
	}{
		{"initialDelaySeconds", p.InitialDelaySeconds, 0},
		{"timeoutSeconds", p.TimeoutSeconds, 1},
		{"periodSeconds", p.PeriodSeconds, 1},
		{"successThreshold", p.SuccessThreshold, 1},
		{"failureThreshold", p.FailureThreshold, 1},
	}
	for _, n := range numbers {
		if n.value < n.min {
			errs = append(errs, field.Invalid(path.Child(n.name), n.value, fmt.Sprintf("must be greater than or equal to %d", n.min)))
		}
	}
	return errs
}

// validatePortRef checks a port given by number or by name.
func validatePortRef(port intstr.IntOrString, path *field.Path) field.ErrorList {
	if port.Type == intstr.String {
		return validatePortName(port.StrVal, path)
	}
	return messages(path, port.IntVal, validation.IsValidPortNum(port.IntValue()))
}

// validateResizePolicy allows one policy each for cpu and memory, each
// NotRequired or RestartContainer; a pod that never restarts its
// containers cannot have them restarted by a resize.
func validateResizePolicy(ps []corev1.ContainerResizePolicy, podPolicy corev1.RestartPolicy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.ResourceName]bool{}
	for i, p := range ps {
		pp := path.Index(i)
		errs = append(errs, validateEnum(p.ResourceName, pp.Child("resourceName"), corev1.ResourceCPU, corev1.ResourceMemory)...)
		if seen[p.ResourceName] {
			errs = append(errs, field.Duplicate(pp.Child("resourceName"), p.ResourceName))
		}
		seen[p.ResourceName] = true
		errs = append(errs, validateEnum(p.RestartPolicy, pp.Child("restartPolicy"), corev1.NotRequired, corev1.RestartContainer)...)
		if podPolicy == corev1.RestartPolicyNever && p.RestartPolicy == corev1.RestartContainer {
			errs = append(errs, field.Invalid(pp.Child("restartPolicy"), p.RestartPolicy, "must be 'NotRequired' when pod `restartPolicy` is 'Never'"))
		}
	}
	return errs
}
