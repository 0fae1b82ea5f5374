package pods

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// securityContext merges the pod's and the container's security contexts
// as the kubelet does: the user, group and runAsNonRoot of the container
// win over the pod's; the pod's fsGroup and supplementalGroups are groups
// of every container. A container that sets runAsNonRoot with runAsUser 0
// is refused here; one whose image would run as root, in the runtime.
func securityContext(pod *corev1.Pod, c *corev1.Container) (runtime.SecurityContext, error) {
	var out runtime.SecurityContext
	if psc := pod.Spec.SecurityContext; psc != nil {
		out.RunAsUser, out.RunAsGroup = psc.RunAsUser, psc.RunAsGroup
		out.RunAsNonRoot = psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		if psc.FSGroup != nil {
			out.SupplementalGroups = append(out.SupplementalGroups, *psc.FSGroup)
		}
		out.SupplementalGroups = append(out.SupplementalGroups, psc.SupplementalGroups...)
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			out.RunAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			out.RunAsGroup = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			out.RunAsNonRoot = *sc.RunAsNonRoot
		}
		out.Privileged = sc.Privileged != nil && *sc.Privileged
		out.ReadOnlyRootFS = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		out.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
		if caps := sc.Capabilities; caps != nil {
			out.CapAdd, out.CapDrop = capStrings(caps.Add), capStrings(caps.Drop)
		}
		if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			return out, fmt.Errorf("securityContext.procMount %q: only Default is supported: %w", *sc.ProcMount, errUnsupported)
		}
	}
	if out.RunAsNonRoot && out.RunAsUser != nil && *out.RunAsUser == 0 {
		return out, configError(fmt.Sprintf("container's runAsUser breaks non-root policy (pod: %q, container: %s)",
			podRef(pod), c.Name))
	}
	return out, nil
}

// configError is a refusal worded as the kubelet words it, without the
// sentinel's text; it matches errUnsupported.
type configError string

func (e configError) Error() string        { return string(e) }
func (e configError) Is(target error) bool { return target == errUnsupported }

func capStrings(caps []corev1.Capability) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		out = append(out, string(c))
	}
	return out
}

// podRef names a pod as the kubelet's messages do: name_namespace(uid).
func podRef(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// fsGroup returns the pod's fsGroup, nil when it has none.
func fsGroup(pod *corev1.Pod) *int64 {
	if pod.Spec.SecurityContext == nil {
		return nil
	}
	return pod.Spec.SecurityContext.FSGroup
}

// withFSGroupModes returns payload with the modes the kubelet gives the
// files of a read-only volume of a pod with an fsGroup: readable by the
// group.
func withFSGroupModes(payload map[string]volumeFile) map[string]volumeFile {
	out := make(map[string]volumeFile, len(payload))
	for p, f := range payload {
		f.mode |= 0o440
		out[p] = f
	}
	return out
}

// setOwnership gives every file and directory under dir to group gid, as
// the kubelet does for a pod's fsGroup: directories become setgid (so that
// new files inherit the group) and searchable by the group; with rw they
// and the files become group-writable too. Links are given to the group
// without being followed.
func setOwnership(dir string, gid int64, rw bool) error {
	fileMask, dirMask := fs.FileMode(0o440), fs.FileMode(0o550)
	if rw {
		fileMask, dirMask = 0o660, 0o770
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, int(gid)); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSticky) | fileMask
		if d.IsDir() {
			mode |= dirMask | fs.ModeSetgid
		}
		return os.Chmod(path, mode)
	})
}

// safeSysctls are the kernel parameters the kubelet lets every pod set:
// namespaced, and unable to affect other pods or the node.
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced":              true,
	"net.ipv4.ip_local_port_range":        true,
	"net.ipv4.tcp_syncookies":             true,
	"net.ipv4.ping_group_range":           true,
	"net.ipv4.ip_unprivileged_port_start": true,
	"net.ipv4.ip_local_reserved_ports":    true,
	"net.ipv4.tcp_keepalive_time":         true,
	"net.ipv4.tcp_fin_timeout":            true,
	"net.ipv4.tcp_keepalive_intvl":        true,
	"net.ipv4.tcp_keepalive_probes":       true,
	"net.ipv4.tcp_rmem":                   true,
	"net.ipv4.tcp_wmem":                   true,
}

// podSysctls returns the pod's sysctls with dotted names; one outside the
// safe set is refused, as a kubelet without allowed unsafe sysctls does.
func podSysctls(pod *corev1.Pod) (map[string]string, error) {
	psc := pod.Spec.SecurityContext
	if psc == nil || len(psc.Sysctls) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(psc.Sysctls))
	for i, s := range psc.Sysctls {
		name := dottedSysctl(s.Name)
		if !safeSysctls[name] {
			return nil, fmt.Errorf("pod.spec.securityContext.sysctls[%d]: %q is not a safe sysctl: %w", i, s.Name, errUnsupported)
		}
		out[name] = s.Value
	}
	return out, nil
}

// dottedSysctl converts a name written with slashes as separators (dots
// then being part of an element, as in an interface name) to the dotted
// form the runtime takes.
func dottedSysctl(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}
