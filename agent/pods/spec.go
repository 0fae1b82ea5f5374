package pods

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// maxHostname is the longest hostname the kernel takes (HOST_NAME_MAX,
// without the terminating NUL).
const maxHostname = 63

// podHostname is spec.hostname or else the pod's name, cut to the
// kernel's limit as the kubelet does: a pod name may be a 253-character
// DNS subdomain, and sethostname refuses anything past 64 bytes. The cut
// drops a trailing '-' or '.'.
func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) <= maxHostname {
		return h
	}
	return strings.TrimRight(h[:maxHostname], "-.")
}

// podSpec translates a pod into what the runtime needs to run its sandbox.
// hostPath volumes of type DirectoryOrCreate and FileOrCreate are created
// here; API data volumes (configMap, secret, projected, downwardAPI) are
// the directories syncVolumes wrote; emptyDirs of medium Memory are tmpfs
// mounts made here (sized by sizeLimit); other volume types become empty
// directories so the pod still starts. With an fsGroup, emptyDirs belong
// to that group.
func (m *Manager) podSpec(pod *corev1.Pod) (*runtime.PodSpec, error) {
	spec := &runtime.PodSpec{
		UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name,
		Hostname:   podHostname(pod),
		ResolvConf: m.resolvConf(pod),
	}
	if pod.Spec.HostNetwork {
		spec.HostNetwork, spec.HostIP = true, m.cfg.NodeIP
	}
	if pod.Spec.Subdomain != "" {
		domain := m.cfg.ClusterDomain
		if domain == "" {
			domain = DefaultClusterDomain
		}
		spec.FQDN = spec.Hostname + "." + pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + domain
	}
	for _, a := range pod.Spec.HostAliases {
		spec.HostAliases = append(spec.HostAliases, runtime.HostAlias{IP: a.IP, Hostnames: a.Hostnames})
	}
	sysctls, err := podSysctls(pod)
	if err != nil {
		return nil, err
	}
	spec.Sysctls = sysctls
	for i, v := range pod.Spec.Volumes {
		if isAPIDataVolume(pod, v.Name) {
			spec.Volumes = append(spec.Volumes, runtime.Volume{Name: v.Name, HostPath: m.volumeDir(pod.UID, v.Name)})
			continue
		}
		if ed := v.EmptyDir; ed != nil && ed.Medium == corev1.StorageMediumMemory {
			// Kept with the API data volumes, whose tmpfs mounts are
			// removed with the pod.
			dir := m.volumeDir(pod.UID, v.Name)
			if err := mountTmpfs(dir, "mode=0777"+tmpfsSize(ed.SizeLimit)); err != nil {
				return nil, fmt.Errorf("pod.spec.volumes[%d]: %w", i, err)
			}
			if gid := fsGroup(pod); gid != nil {
				if err := setOwnership(dir, *gid, true); err != nil {
					return nil, fmt.Errorf("pod.spec.volumes[%d]: %w", i, err)
				}
			}
			spec.Volumes = append(spec.Volumes, runtime.Volume{Name: v.Name, HostPath: dir})
			continue
		}
		vol, err := volume(v)
		if err != nil {
			return nil, fmt.Errorf("pod.spec.volumes[%d]: %w", i, err)
		}
		if v.EmptyDir != nil {
			vol.FSGroup = fsGroup(pod)
		}
		spec.Volumes = append(spec.Volumes, vol)
	}
	return spec, nil
}

func volume(v corev1.Volume) (runtime.Volume, error) {
	if img := v.Image; img != nil {
		return runtime.Volume{Name: v.Name, Image: img.Reference, PullPolicy: runtime.PullPolicy(img.PullPolicy)}, nil
	}
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
// references in its environment; warn receives the events resolving it
// records.
func (m *Manager) containerSpec(pod *corev1.Pod, c *corev1.Container, podIP string, warn func(reason, msg string)) (*runtime.ContainerSpec, error) {
	objs := m.objects()
	env, err := m.env(pod, c, podIP, objs, warn)
	if err != nil {
		return nil, err
	}
	sec, err := securityContext(pod, c)
	if err != nil {
		return nil, err
	}
	auth, missing := pullAuth(pod, objs)
	if len(missing) > 0 && warn != nil {
		warn(EventFailedToRetrieveImagePullSecret, missingPullSecrets(missing))
	}
	spec := &runtime.ContainerSpec{
		Name: c.Name, Image: c.Image, PullPolicy: runtime.PullPolicy(c.ImagePullPolicy), PullAuth: auth,
		Command: expandAll(c.Command, env), Args: expandAll(c.Args, env),
		Env: env, WorkingDir: c.WorkingDir, TTY: c.TTY, Stdin: c.Stdin, StdinOnce: c.StdinOnce,
		Security: sec, PIDNamespaceOf: ephemeralTarget(pod, c.Name),
		Resources: containerResources(&c.Resources),
	}
	for i, vm := range c.VolumeMounts {
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			if sub, err = expandSubPath(vm.SubPathExpr, env); err != nil {
				return nil, fmt.Errorf("volumeMounts[%d].subPathExpr: %w", i, err)
			}
		}
		spec.Mounts = append(spec.Mounts, runtime.Mount{
			Volume: vm.Name, Path: vm.MountPath, SubPath: sub,
			// The kubelet mounts API data read-only whatever the pod says.
			ReadOnly: vm.ReadOnly || isAPIDataVolume(pod, vm.Name),
		})
	}
	return spec, nil
}

// expandSubPath expands a subPathExpr with the container's variables, as
// the kubelet does: every referenced variable must be set and not empty,
// and the result must stay inside the volume.
func expandSubPath(expr string, env []runtime.EnvVar) (string, error) {
	vals := envMap(env)
	var missing []string
	sub := expand(expr, func(name string) (string, bool) {
		v := vals[name]
		if v == "" {
			missing = append(missing, name)
		}
		return v, true
	})
	if len(missing) > 0 {
		slices.Sort(missing)
		return "", fmt.Errorf("missing value for %s: %w", strings.Join(slices.Compact(missing), ", "), errUnsupported)
	}
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("%q must be a relative path: %w", sub, errUnsupported)
	}
	if slices.Contains(strings.Split(filepath.ToSlash(sub), "/"), "..") {
		return "", fmt.Errorf("%q must not contain '..': %w", sub, errUnsupported)
	}
	return sub, nil
}

// containerResources is what the runtime gives a container of its
// requests and limits: cgroup settings for cpu and the memory limit.
func containerResources(r *corev1.ResourceRequirements) runtime.Resources {
	return runtime.Resources{
		CPURequestMilli:  milli(r.Requests, corev1.ResourceCPU),
		CPULimitMilli:    milli(r.Limits, corev1.ResourceCPU),
		MemoryLimitBytes: value(r.Limits, corev1.ResourceMemory),
	}
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

// isAPIDataVolume tells whether the pod's volume name holds API data
// (configMap, secret, downwardAPI, projected), which the kubelet always
// mounts read-only.
func isAPIDataVolume(pod *corev1.Pod, name string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == name {
			return v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
		}
	}
	return false
}
