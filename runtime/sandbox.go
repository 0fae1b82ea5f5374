package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/minik-dev/minik/internal/atomicfile"
)

// sandboxID is the containerd ID of a pod's sandbox container.
func sandboxID(uid string) string { return "sandbox-" + uid }

// RunPodSandbox starts the pod's sandbox; see Pods.
func (c *Containerd) RunPodSandbox(ctx context.Context, pod *PodSpec) (*PodStatus, error) {
	if err := validatePod(pod); err != nil {
		return nil, err
	}
	ctx = c.ctx(ctx)
	defer c.lockPod(pod.UID)()
	sb, err := c.client.LoadContainer(ctx, sandboxID(pod.UID))
	switch {
	case err == nil:
		if pid, _ := taskPID(ctx, sb); pid > 0 {
			return c.podStatusLocked(ctx, pod.UID)
		}
		c.lg.Info("sandbox died, replacing it", "pod", pod.Namespace+"/"+pod.Name)
		if err := c.stopPodLocked(ctx, pod.UID, 0); err != nil {
			return nil, err
		}
		if err := sb.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return nil, err
		}
	case !errdefs.IsNotFound(err):
		return nil, err
	}
	if err := c.writePodFiles(pod, ""); err != nil {
		return nil, err
	}
	if err := c.startSandbox(ctx, pod); err != nil {
		return nil, err
	}
	return c.podStatusLocked(ctx, pod.UID)
}

func validatePod(pod *PodSpec) error {
	if pod.UID == "" || pod.Name == "" || pod.Namespace == "" {
		return fmt.Errorf("pod %q/%q uid %q: uid, namespace and name must be set: %w", pod.Namespace, pod.Name, pod.UID, ErrInvalid)
	}
	if err := identifiers.Validate(sandboxID(pod.UID)); err != nil {
		return fmt.Errorf("pod uid %q: %w: %v", pod.UID, ErrInvalid, err)
	}
	for i, v := range pod.Volumes {
		if v.Name == "" || filepath.Base(v.Name) != v.Name {
			return fmt.Errorf("pod.spec.volumes[%d].name %q must be a plain name: %w", i, v.Name, ErrInvalid)
		}
	}
	return nil
}

// startSandbox creates and starts the pause container, then sets up the
// network and rewrites /etc/hosts with the pod IP. On error it removes what
// it created.
func (c *Containerd) startSandbox(ctx context.Context, pod *PodSpec) (err error) {
	id := sandboxID(pod.UID)
	labels := podLabels(pod, KindSandbox)
	if pod.HostNetwork {
		labels[LabelHostNetwork], labels[LabelPodIP] = "true", pod.HostIP
	}
	ctr, err := c.client.NewContainer(ctx, id,
		client.WithContainerLabels(labels),
		client.WithNewSpec(c.sandboxSpec(pod, id)...))
	if err != nil {
		return fmt.Errorf("create sandbox: %w", err)
	}
	defer func() {
		if err != nil {
			c.deleteContainer(context.WithoutCancel(ctx), ctr)
		}
	}()
	task, err := ctr.NewTask(ctx, cio0)
	if err != nil {
		return fmt.Errorf("create sandbox task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	if pod.HostNetwork {
		return nil // the node's network is up, and its files were written
	}
	netns := netnsPath(task.Pid())
	if err := loopbackUp(netns); err != nil {
		return fmt.Errorf("sandbox loopback: %w", err)
	}
	if c.cfg.Network == nil {
		return nil
	}
	ip, err := c.cfg.Network.Setup(ctx, pod.UID, netns)
	if err != nil {
		return fmt.Errorf("network setup: %w", err)
	}
	if err := setLabel(ctx, ctr, LabelPodIP, ip); err != nil {
		return err
	}
	return c.writePodFiles(pod, ip)
}

func (c *Containerd) sandboxSpec(pod *PodSpec, id string) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithRootFSPath(c.pause.rootfs),
		oci.WithRootFSReadonly(),
		oci.WithProcessArgs(pauseTarget, PauseArg),
		oci.WithMounts(c.pause.mounts),
		oci.WithCgroup(c.cgroupPath(pod.UID, id)),
		oci.WithAnnotations(map[string]string{groupAnnotation: pod.UID}),
		oci.WithNoNewPrivileges,
		withSysctls(pod.Sysctls),
	}
	if pod.HostNetwork {
		// The containers join the sandbox's namespaces, and so the node's.
		return append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.UTSNamespace))
	}
	return append(opts, oci.WithHostname(hostname(pod)))
}

// withSysctls sets kernel parameters in the namespaces the runtime
// creates.
func withSysctls(sysctls map[string]string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if len(sysctls) == 0 {
			return nil
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		maps.Copy(s.Linux.Sysctl, sysctls)
		return nil
	}
}

func hostname(pod *PodSpec) string {
	if pod.Hostname != "" {
		return pod.Hostname
	}
	return pod.Name
}

func podLabels(pod *PodSpec, kind string) map[string]string {
	return map[string]string{
		LabelKind:         kind,
		LabelPodUID:       pod.UID,
		LabelPodName:      pod.Name,
		LabelPodNamespace: pod.Namespace,
	}
}

func netnsPath(pid uint32) string { return fmt.Sprintf("/proc/%d/ns/net", pid) }

// taskPID returns the PID of the container's running task, or 0.
func taskPID(ctx context.Context, ctr client.Container) (uint32, error) {
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return 0, err
	}
	st, err := task.Status(ctx)
	if err != nil || st.Status != client.Running {
		return 0, err
	}
	return task.Pid(), nil
}

// writePodFiles writes the pod's hostname, hosts and resolv.conf files and
// creates its emptyDir volumes.
func (c *Containerd) writePodFiles(pod *PodSpec, ip string) error {
	dir := c.sandboxDir(pod.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeVolumes(dir, pod.Volumes); err != nil {
		return err
	}
	resolv := pod.ResolvConf
	if resolv == "" {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		resolv = string(b)
	}
	name, hosts := hostname(pod), hostsFile(pod, ip)
	if pod.HostNetwork {
		var err error
		if name, hosts, err = nodeHostFiles(pod); err != nil {
			return err
		}
	}
	files := map[string]string{"hostname": name + "\n", "hosts": hosts, "resolv.conf": resolv}
	for name, content := range files {
		if err := atomicfile.Write(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeVolumes creates the pod's emptyDirs and records where each volume
// is, for the containers started later.
func writeVolumes(dir string, vols []Volume) error {
	src, images := map[string]string{}, map[string]imageVolume{}
	for _, v := range vols {
		if v.Image != "" {
			images[v.Name] = imageVolume{Image: v.Image, PullPolicy: v.PullPolicy}
			continue
		}
		src[v.Name] = v.HostPath
		if v.HostPath == "" {
			src[v.Name] = filepath.Join(dir, "volumes", v.Name)
			if err := makeEmptyDir(src[v.Name], v.FSGroup); err != nil {
				return err
			}
		}
	}
	data, err := json.Marshal(src)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "volumes.json"), data, 0o644); err != nil {
		return err
	}
	if data, err = json.Marshal(images); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, imageVolumesFile), data, 0o644)
}

// makeEmptyDir creates an emptyDir writable by every user (the umask
// aside), owned by group fsGroup and setgid when fsGroup is set.
func makeEmptyDir(dir string, fsGroup *int64) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	mode := os.FileMode(0o777)
	if fsGroup != nil {
		if err := os.Chown(dir, -1, int(*fsGroup)); err != nil {
			return err
		}
		mode |= os.ModeSetgid
	}
	return os.Chmod(dir, mode)
}

// readVolumes returns the source directory of each pod volume by name.
func readVolumes(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "volumes.json"))
	if err != nil {
		return nil, err
	}
	src := map[string]string{}
	return src, json.Unmarshal(data, &src)
}

// hostsFile is the pod's /etc/hosts as the kubelet writes it: a header
// that marks it as managed, the loopback and IPv6 names, the pod's own
// names, then the pod's host aliases.
func hostsFile(pod *PodSpec, ip string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	if ip != "" {
		if pod.FQDN != "" {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", ip, pod.FQDN, hostname(pod))
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname(pod))
		}
	}
	if len(pod.HostAliases) > 0 {
		b.WriteString("\n")
		writeHostAliases(&b, pod.HostAliases)
	}
	return b.String()
}

func writeHostAliases(b *strings.Builder, aliases []HostAlias) {
	b.WriteString("# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
}

// nodeHostFiles returns the hostname and /etc/hosts of a pod on the
// node's network: the node's, and a copy of the node's hosts file with
// the pod's host aliases after it.
func nodeHostFiles(pod *PodSpec) (name, hosts string, err error) {
	if name, err = os.Hostname(); err != nil {
		return "", "", err
	}
	b, err := os.ReadFile("/etc/hosts")
	if err != nil && !os.IsNotExist(err) {
		return "", "", err
	}
	hosts = string(b)
	if len(pod.HostAliases) > 0 {
		var sb strings.Builder
		sb.WriteString(hosts)
		if hosts != "" && !strings.HasSuffix(hosts, "\n") {
			sb.WriteString("\n")
		}
		writeHostAliases(&sb, pod.HostAliases)
		hosts = sb.String()
	}
	return name, hosts, nil
}
