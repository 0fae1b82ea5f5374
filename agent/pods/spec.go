package pods

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/minik-dev/minik/runtime"
)

// podSpec translates a pod into what the runtime needs to run its sandbox.
// hostPath volumes of type DirectoryOrCreate and FileOrCreate are created
// here; volume types the node cannot fill (configMap, secret, projected,
// downwardAPI) become empty directories so the pod still starts.
func (m *Manager) podSpec(pod *corev1.Pod) (*runtime.PodSpec, error) {
	spec := &runtime.PodSpec{
		UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name,
		Hostname:   pod.Spec.Hostname,
		ResolvConf: m.resolvConf(pod),
	}
	if spec.Hostname == "" {
		spec.Hostname = pod.Name
	}
	for i, v := range pod.Spec.Volumes {
		vol, err := volume(v)
		if err != nil {
			return nil, fmt.Errorf("pod.spec.volumes[%d]: %w", i, err)
		}
		spec.Volumes = append(spec.Volumes, vol)
	}
	return spec, nil
}

func volume(v corev1.Volume) (runtime.Volume, error) {
	hp := v.HostPath
	if hp == nil {
		return runtime.Volume{Name: v.Name}, nil
	}
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	switch typ {
	case corev1.HostPathDirectoryOrCreate:
		if err := os.MkdirAll(hp.Path, 0o755); err != nil {
			return runtime.Volume{}, err
		}
	case corev1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
			return runtime.Volume{}, err
		}
		f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return runtime.Volume{}, err
		}
		f.Close()
	case corev1.HostPathDirectory, corev1.HostPathFile:
		if _, err := os.Stat(hp.Path); err != nil {
			return runtime.Volume{}, fmt.Errorf("hostPath %q: %w", hp.Path, err)
		}
	}
	return runtime.Volume{Name: v.Name, HostPath: hp.Path}, nil
}

// containerSpec translates one container. podIP fills status.podIP
// references in its environment.
func (m *Manager) containerSpec(pod *corev1.Pod, c *corev1.Container, podIP string) (*runtime.ContainerSpec, error) {
	env, err := m.env(pod, c, podIP)
	if err != nil {
		return nil, err
	}
	spec := &runtime.ContainerSpec{
		Name: c.Name, Image: c.Image, PullPolicy: runtime.PullPolicy(c.ImagePullPolicy),
		Command: expandAll(c.Command, env), Args: expandAll(c.Args, env),
		Env: env, WorkingDir: c.WorkingDir, TTY: c.TTY,
		Resources: runtime.Resources{
			CPURequestMilli:  milli(c.Resources.Requests, corev1.ResourceCPU),
			CPULimitMilli:    milli(c.Resources.Limits, corev1.ResourceCPU),
			MemoryLimitBytes: value(c.Resources.Limits, corev1.ResourceMemory),
		},
	}
	for i, vm := range c.VolumeMounts {
		if vm.SubPath != "" || vm.SubPathExpr != "" {
			return nil, fmt.Errorf("container %q: volumeMounts[%d].subPath: %w", c.Name, i, errUnsupported)
		}
		spec.Mounts = append(spec.Mounts, runtime.Mount{Volume: vm.Name, Path: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return spec, nil
}

func milli(rl corev1.ResourceList, name corev1.ResourceName) int64 {
	if q, ok := rl[name]; ok {
		return q.MilliValue()
	}
	return 0
}

func value(rl corev1.ResourceList, name corev1.ResourceName) int64 {
	if q, ok := rl[name]; ok {
		return q.Value()
	}
	return 0
}

// env resolves a container's environment: plain values with $(VAR)
// references to earlier entries expanded, fieldRef and resourceFieldRef.
// Optional references the node cannot resolve (configMap, secret) are left
// out; required ones are an error.
func (m *Manager) env(pod *corev1.Pod, c *corev1.Container, podIP string) ([]runtime.EnvVar, error) {
	for i, ef := range c.EnvFrom {
		optional := (ef.ConfigMapRef != nil && ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional) ||
			(ef.SecretRef != nil && ef.SecretRef.Optional != nil && *ef.SecretRef.Optional)
		if !optional {
			return nil, fmt.Errorf("container %q: envFrom[%d]: %w", c.Name, i, errUnsupported)
		}
	}
	var out []runtime.EnvVar
	vals := map[string]string{}
	for i, e := range c.Env {
		v, ok, err := m.envValue(pod, c, podIP, e, vals)
		if err != nil {
			return nil, fmt.Errorf("container %q: env[%d] %q: %w", c.Name, i, e.Name, err)
		}
		if !ok {
			continue
		}
		vals[e.Name] = v
		out = append(out, runtime.EnvVar{Name: e.Name, Value: v})
	}
	return out, nil
}

func (m *Manager) envValue(pod *corev1.Pod, c *corev1.Container, podIP string, e corev1.EnvVar, vals map[string]string) (string, bool, error) {
	src := e.ValueFrom
	switch {
	case src == nil:
		return expand(e.Value, vals), true, nil
	case src.FieldRef != nil:
		v, err := m.fieldRef(pod, podIP, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := resourceFieldRef(c, src.ResourceFieldRef)
		return v, err == nil, err
	case src.ConfigMapKeyRef != nil && src.ConfigMapKeyRef.Optional != nil && *src.ConfigMapKeyRef.Optional,
		src.SecretKeyRef != nil && src.SecretKeyRef.Optional != nil && *src.SecretKeyRef.Optional:
		return "", false, nil
	}
	return "", false, fmt.Errorf("valueFrom: %w", errUnsupported)
}

// fieldRef resolves a downward API field path.
func (m *Manager) fieldRef(pod *corev1.Pod, podIP, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return m.cfg.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return podIP, nil
	case "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return m.cfg.NodeIP, nil
	}
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	return "", fmt.Errorf("fieldRef %q: %w", path, errUnsupported)
}

// subscript parses "prefix['key']".
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "]")
	if k, err := strconv.Unquote(strings.ReplaceAll(rest, "'", `"`)); err == nil {
		return k, true
	}
	return "", false
}

// resourceFieldRef resolves requests and limits of cpu and memory; an unset
// limit reads as 0.
func resourceFieldRef(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	list, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("resourceFieldRef %q: %w", ref.Resource, errUnsupported)
	}
	rl := c.Resources.Limits
	if list == "requests" {
		rl = c.Resources.Requests
	}
	q := rl[corev1.ResourceName(name)]
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	switch name {
	case "cpu":
		// Rounded up, as the kubelet does, so 250m with divisor 1 reads 1.
		d := div.MilliValue()
		return strconv.FormatInt((q.MilliValue()+d-1)/d, 10), nil
	case "memory", "ephemeral-storage":
		d := div.Value()
		return strconv.FormatInt((q.Value()+d-1)/d, 10), nil
	}
	return "", fmt.Errorf("resourceFieldRef %q: %w", ref.Resource, errUnsupported)
}

// expand replaces $(NAME) with the value of an earlier variable; $$ escapes
// a dollar and unknown references stay as written, as in Kubernetes.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vals[name]; ok {
					b.WriteString(v)
					i += 2 + end
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func expandAll(ss []string, env []runtime.EnvVar) []string {
	if len(ss) == 0 {
		return nil
	}
	vals := make(map[string]string, len(env))
	for _, e := range env {
		vals[e.Name] = e.Value
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = expand(s, vals)
	}
	return out
}
