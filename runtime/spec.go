package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// cfsPeriod is the CPU CFS period, in microseconds, that limits use.
const cfsPeriod = 100000

// containerSpec returns the spec options of an application container that
// joins the namespaces of the sandbox with PID sbPID.
func (c *Containerd) containerSpec(ctx context.Context, uid, id string, sbPID uint32, spec *ContainerSpec, img client.Image) ([]oci.SpecOpts, error) {
	ic, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %q config: %w", spec.Image, err)
	}
	args := Args(ic.Config.Entrypoint, ic.Config.Cmd, spec.Command, spec.Args)
	if len(args) == 0 {
		return nil, fmt.Errorf("container %q: no command and none in image %q: %w", spec.Name, spec.Image, ErrInvalid)
	}
	mounts, err := c.containerMounts(ctx, uid, spec)
	if err != nil {
		return nil, err
	}
	secOpts, err := securityOpts(spec.Security, ic.Config.User)
	if err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(args...),
		oci.WithEnv(envList(spec.Env)),
		withCgroupfs,
		oci.WithMounts(mounts),
		oci.WithCgroup(c.cgroupPath(uid, id)),
		oci.WithAnnotations(map[string]string{groupAnnotation: uid}),
	}
	for _, ns := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: ns, Path: nsPath(sbPID, ns)}))
	}
	if target := spec.PIDNamespaceOf; target != "" {
		pid, err := c.runningPID(ctx, uid, target)
		if err != nil {
			return nil, err
		}
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: nsPath(pid, specs.PIDNamespace)}))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.TTY {
		opts = append(opts, oci.WithTTY)
	}
	opts = append(opts, secOpts...)
	return append(opts, resourceOpts(spec.Resources)...), nil
}

// withCgroupfs mounts the container's cgroup read-only at /sys/fs/cgroup,
// as Kubernetes nodes do, so that a process can read its own limits
// (Privileged makes it writable); the pod's volumes may mount over it.
func withCgroupfs(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
	return nil
}

// Args returns the process arguments of a container as Kubernetes decides
// them from the image's entrypoint and cmd and the container's command and
// args: a command replaces the entrypoint and drops the image's cmd; args
// replace the cmd.
func Args(entrypoint, cmd, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string{}, command...), args...)
	case len(args) > 0:
		return append(append([]string{}, entrypoint...), args...)
	default:
		return append(append([]string{}, entrypoint...), cmd...)
	}
}

func envList(env []EnvVar) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

func nsPath(pid uint32, ns specs.LinuxNamespaceType) string {
	name := map[specs.LinuxNamespaceType]string{
		specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.PIDNamespace: "pid",
	}[ns]
	return fmt.Sprintf("/proc/%d/ns/%s", pid, name)
}

// containerMounts returns the pod files and the volume mounts of spec.
func (c *Containerd) containerMounts(ctx context.Context, uid string, spec *ContainerSpec) ([]specs.Mount, error) {
	dir := c.sandboxDir(uid)
	mounts := []specs.Mount{
		bindMount(filepath.Join(dir, "hosts"), "/etc/hosts", false),
		bindMount(filepath.Join(dir, "hostname"), "/etc/hostname", true),
		bindMount(filepath.Join(dir, "resolv.conf"), "/etc/resolv.conf", true),
	}
	vols, err := readVolumes(dir)
	if err != nil {
		return nil, err
	}
	images, err := readImageVolumes(dir)
	if err != nil {
		return nil, err
	}
	for i, m := range spec.Mounts {
		if iv, ok := images[m.Volume]; ok {
			if m.SubPath != "" {
				return nil, fmt.Errorf("container %q: volumeMounts[%d].subPath of image volume %q is not supported: %w", spec.Name, i, m.Volume, ErrInvalid)
			}
			im, err := c.imageVolumeMount(ctx, uid, m.Volume, iv, spec.PullAuth, m.Path)
			if err != nil {
				return nil, fmt.Errorf("container %q: %w", spec.Name, err)
			}
			mounts = append(mounts, im)
			continue
		}
		src, ok := vols[m.Volume]
		if !ok {
			return nil, fmt.Errorf("container %q: volumeMounts[%d].name %q is not a pod volume: %w", spec.Name, i, m.Volume, ErrInvalid)
		}
		if m.SubPath != "" {
			if src, err = subPath(src, m.SubPath); err != nil {
				return nil, fmt.Errorf("container %q: volumeMounts[%d].subPath: %w", spec.Name, i, err)
			}
		}
		mounts = append(mounts, bindMount(src, m.Path, m.ReadOnly))
	}
	return mounts, nil
}

// subPath resolves sub inside the volume at root one element at a time,
// following symbolic links (a configMap key is a link into the volume's
// current data, so the mount keeps the content of the moment, as in
// Kubernetes) and creating missing elements as directories. A path that
// leads outside the volume, through ".." or a link a container wrote, is
// refused before anything is created there. The checks and the mount are
// not atomic: a container able to write into the volume could swap a
// directory for a link in between.
func subPath(root, sub string) (string, error) {
	if !filepath.IsLocal(sub) {
		return "", fmt.Errorf("%q must be a relative path inside the volume: %w", sub, ErrInvalid)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	cur := realRoot
	for _, part := range strings.Split(filepath.Clean(sub), string(filepath.Separator)) {
		next := filepath.Join(cur, part)
		if _, err := os.Lstat(next); os.IsNotExist(err) {
			if err := os.Mkdir(next, 0o755); err != nil && !os.IsExist(err) {
				return "", err
			}
		} else if err != nil {
			return "", err
		}
		if cur, err = filepath.EvalSymlinks(next); err != nil {
			return "", err
		}
		if rel, err := filepath.Rel(realRoot, cur); err != nil || !filepath.IsLocal(rel) {
			return "", fmt.Errorf("%q leads outside the volume: %w", sub, ErrInvalid)
		}
	}
	return cur, nil
}

// resourceOpts maps requests and limits to cgroup settings as the kubelet
// does; see linuxResources.
func resourceOpts(r Resources) []oci.SpecOpts {
	return []oci.SpecOpts{func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		setResources(s, r)
		return nil
	}}
}

// linuxResources is the cgroup side of r: shares from the CPU request (or
// the limit without one), CFS quota from the CPU limit, and the memory
// limit. Without a CPU request or limit the shares are 2, the least, as
// the kubelet gives them (so that adding a request never lowers a
// container's weight). A resource left unset stays nil, which an update
// leaves as it is.
func linuxResources(r Resources) *specs.LinuxResources {
	req := r.CPURequestMilli
	if req == 0 {
		req = r.CPULimitMilli
	}
	shares := uint64(max(minShares, req*1024/1000))
	lr := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}
	if r.CPULimitMilli > 0 {
		quota, period := max(1000, r.CPULimitMilli*cfsPeriod/1000), uint64(cfsPeriod)
		lr.CPU.Quota, lr.CPU.Period = &quota, &period
	}
	if r.MemoryLimitBytes > 0 {
		limit := r.MemoryLimitBytes
		lr.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	return lr
}

// minShares is the least CPU weight a container gets (cgroup v1 shares).
const minShares = 2

// setResources writes the cgroup settings of r into s, keeping those r
// leaves unset.
func setResources(s *oci.Spec, r Resources) {
	lr := linuxResources(r)
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	cur := s.Linux.Resources
	if lr.CPU != nil { // always set by linuxResources
		if cur.CPU == nil {
			cur.CPU = &specs.LinuxCPU{}
		}
		cur.CPU.Shares = lr.CPU.Shares
		if lr.CPU.Quota != nil {
			cur.CPU.Quota, cur.CPU.Period = lr.CPU.Quota, lr.CPU.Period
		}
	}
	if lr.Memory != nil {
		if cur.Memory == nil {
			cur.Memory = &specs.LinuxMemory{}
		}
		cur.Memory.Limit = lr.Memory.Limit
	}
}
