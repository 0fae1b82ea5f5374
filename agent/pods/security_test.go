package pods

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

func TestSecurityContextMerge(t *testing.T) {
	m := testManager(t, Config{})
	pod := newPod("sec", "")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(2000)), RunAsNonRoot: ptr(true),
		FSGroup: ptr(int64(3000)), SupplementalGroups: []int64{4000, 4001},
	}
	c := &pod.Spec.Containers[0]
	spec, err := m.containerSpec(pod, c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := runtime.SecurityContext{RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(2000)), RunAsNonRoot: true,
		SupplementalGroups: []int64{3000, 4000, 4001}}
	if d := cmp.Diff(want, spec.Security); d != "" {
		t.Errorf("pod-level only (-want +got):\n%s", d)
	}
	c.SecurityContext = &corev1.SecurityContext{
		RunAsUser: ptr(int64(1234)), RunAsGroup: ptr(int64(5678)), RunAsNonRoot: ptr(false),
		Privileged: ptr(false), ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
		ProcMount:    ptr(corev1.DefaultProcMount),
	}
	if spec, err = m.containerSpec(pod, c, "", nil); err != nil {
		t.Fatal(err)
	}
	want = runtime.SecurityContext{RunAsUser: ptr(int64(1234)), RunAsGroup: ptr(int64(5678)),
		SupplementalGroups: []int64{3000, 4000, 4001}, ReadOnlyRootFS: true, NoNewPrivileges: true,
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"}}
	if d := cmp.Diff(want, spec.Security); d != "" {
		t.Errorf("container overrides (-want +got):\n%s", d)
	}
	c.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true), AllowPrivilegeEscalation: ptr(true)}
	if spec, err = m.containerSpec(pod, c, "", nil); err != nil {
		t.Fatal(err)
	}
	if !spec.Security.Privileged || spec.Security.NoNewPrivileges || *spec.Security.RunAsUser != 1000 {
		t.Errorf("privileged container: %+v", spec.Security)
	}
}

func TestSecurityContextRefusals(t *testing.T) {
	m := testManager(t, Config{})
	pod := newPod("root", "")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true)}
	c := &pod.Spec.Containers[0]
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(0))}
	_, err := m.containerSpec(pod, c, "", nil)
	wantMsg := `container's runAsUser breaks non-root policy (pod: "root_ns(` + string(pod.UID) + `)", container: c0)`
	if err == nil || err.Error() != wantMsg || !errors.Is(err, errUnsupported) {
		t.Errorf("runAsNonRoot with runAsUser 0: %v, want %q", err, wantMsg)
	}
	// Without runAsNonRoot, root is allowed; the image's user is checked
	// by the runtime.
	pod.Spec.SecurityContext = nil
	if _, err := m.containerSpec(pod, c, "", nil); err != nil {
		t.Errorf("runAsUser 0 refused without runAsNonRoot: %v", err)
	}
	c.SecurityContext = &corev1.SecurityContext{ProcMount: ptr(corev1.UnmaskedProcMount)}
	if _, err := m.containerSpec(pod, c, "", nil); !errors.Is(err, errUnsupported) || !strings.Contains(err.Error(), "procMount") {
		t.Errorf("procMount Unmasked: %v, want errUnsupported naming procMount", err)
	}
}

func TestFSGroupVolumes(t *testing.T) {
	data := t.TempDir()
	m := testManager(t, Config{DataDir: data})
	objs := testObjects()
	pod := newPod("fsg", "")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(5678))}
	cm := cmVolume("cfg", "cfg")
	cm.ConfigMap.DefaultMode = mode(0o600)
	pod.Spec.Volumes = []corev1.Volume{cm, {Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
	t.Cleanup(func() {
		if err := m.removeVolumes(pod.UID); err != nil {
			t.Error(err)
		}
	})
	wrote, err := m.setUpVolume(context.Background(), pod, &pod.Spec.Volumes[0], &objs)
	if err != nil || !wrote {
		t.Fatalf("setUpVolume = %v, %v", wrote, err)
	}
	dir := m.volumeDir(pod.UID, "cfg")
	file, err := filepath.EvalSymlinks(filepath.Join(dir, "mode"))
	if err != nil {
		t.Fatal(err)
	}
	checkOwner(t, file, 0o640, 5678)
	checkOwner(t, filepath.Dir(file), fs.ModeDir|fs.ModeSetgid|0o755, 5678)
	checkOwner(t, dir, fs.ModeDir|fs.ModeSetgid|0o755, 5678)
	// Unchanged sources write nothing: the modes kept match the payload.
	if wrote, err := m.setUpVolume(context.Background(), pod, &pod.Spec.Volumes[0], &objs); err != nil || wrote {
		t.Errorf("second setUpVolume = %v, %v; want no new version", wrote, err)
	}
	spec, err := m.podSpec(pod)
	if err != nil {
		t.Fatal(err)
	}
	if g := spec.Volumes[1].FSGroup; g == nil || *g != 5678 {
		t.Errorf("emptyDir FSGroup = %v, want 5678", g)
	}
	checkOwner(t, m.volumeDir(pod.UID, "mem"), fs.ModeDir|fs.ModeSetgid|0o777, 5678)
	if spec.Volumes[0].FSGroup != nil {
		t.Errorf("configMap volume carries an FSGroup for the runtime")
	}
}

func checkOwner(t *testing.T, path string, mode fs.FileMode, gid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode || fi.Sys().(*syscall.Stat_t).Gid != gid {
		t.Errorf("%s: mode %v gid %d, want %v gid %d", path, fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, mode, gid)
	}
}

func TestPodSysctls(t *testing.T) {
	m := testManager(t, Config{})
	pod := newPod("ctl", "")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{
		{Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "net/ipv4/ip_local_port_range", Value: "1024 65000"}}}
	spec, err := m.podSpec(pod)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"kernel.shm_rmid_forced": "1", "net.ipv4.ip_local_port_range": "1024 65000"}
	if d := cmp.Diff(want, spec.Sysctls); d != "" {
		t.Errorf("sysctls (-want +got):\n%s", d)
	}
	pod.Spec.SecurityContext.Sysctls = append(pod.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: "kernel.msgmax", Value: "1"})
	if _, err := m.podSpec(pod); !errors.Is(err, errUnsupported) || !strings.Contains(err.Error(), "sysctls[2]") {
		t.Errorf("unsafe sysctl: %v, want errUnsupported naming sysctls[2]", err)
	}
	if got := dottedSysctl("net/ipv4/conf/eth0.100/forwarding"); got != "net.ipv4.conf.eth0/100.forwarding" {
		t.Errorf("dottedSysctl = %q", got)
	}
}
