package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
)

func i64(v int64) *int64 { return &v }

// secSpec generates containerd's default spec with the options of sc over
// an image whose user resolved to uid 7, gid 8, groups 8 and 9.
func secSpec(t *testing.T, sc SecurityContext) *oci.Spec {
	t.Helper()
	opts, err := securityOpts(sc, "7")
	if err != nil {
		t.Fatal(err)
	}
	image := func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.User.UID, s.Process.User.GID, s.Process.User.AdditionalGids = 7, 8, []uint32{8, 9}
		return nil
	}
	ctx := namespaces.WithNamespace(context.Background(), "test")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "c"}, append([]oci.SpecOpts{image}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecurityUser(t *testing.T) {
	tests := []struct {
		name     string
		sc       SecurityContext
		uid, gid uint32
		groups   []uint32
	}{
		{"image user", SecurityContext{}, 7, 8, []uint32{8, 9}},
		{"runAsUser", SecurityContext{RunAsUser: i64(1234)}, 1234, 0, []uint32{0}},
		{"runAsUser and group", SecurityContext{RunAsUser: i64(1234), RunAsGroup: i64(5678)}, 1234, 5678, []uint32{5678}},
		{"group only", SecurityContext{RunAsGroup: i64(5678)}, 7, 5678, []uint32{5678}},
		{"supplemental", SecurityContext{RunAsUser: i64(1), RunAsGroup: i64(2), SupplementalGroups: []int64{300, 2, 100}},
			1, 2, []uint32{2, 100, 300}},
		{"supplemental over image groups", SecurityContext{SupplementalGroups: []int64{100}}, 7, 8, []uint32{8, 9, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := secSpec(t, tc.sc).Process.User
			if u.UID != tc.uid || u.GID != tc.gid {
				t.Errorf("user = %d:%d, want %d:%d", u.UID, u.GID, tc.uid, tc.gid)
			}
			if d := cmp.Diff(tc.groups, u.AdditionalGids); d != "" {
				t.Errorf("groups (-want +got):\n%s", d)
			}
		})
	}
}

func TestSecurityRunAsNonRoot(t *testing.T) {
	tests := []struct {
		name, imageUser string
		runAsUser       *int64
		wantErr         string
	}{
		{"root image", "", nil, "container has runAsNonRoot and image will run as root"},
		{"uid 0 image", "0:0", nil, "container has runAsNonRoot and image will run as root"},
		{"named image user", "nobody", nil, "container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root"},
		{"explicit root", "1000", i64(0), "container's runAsUser breaks non-root policy"},
		{"numeric image user", "1000:1000", nil, ""},
		{"runAsUser over root image", "", i64(1000), ""},
		{"runAsUser over named image user", "nobody", i64(1000), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := securityOpts(SecurityContext{RunAsNonRoot: true, RunAsUser: tc.runAsUser}, tc.imageUser)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("securityOpts: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrInvalid) {
				t.Fatalf("securityOpts = %v, want %q matching ErrInvalid", err, tc.wantErr)
			}
		})
	}
	if _, err := securityOpts(SecurityContext{}, ""); err != nil {
		t.Errorf("root without runAsNonRoot refused: %v", err)
	}
}

func TestSecurityCapabilities(t *testing.T) {
	s := secSpec(t, SecurityContext{CapAdd: []string{"NET_ADMIN", "sys_time"}, CapDrop: []string{"CHOWN", "NET_RAW"}})
	caps := s.Process.Capabilities
	for _, want := range []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_KILL"} {
		if !slices.Contains(caps.Bounding, want) || !slices.Contains(caps.Effective, want) {
			t.Errorf("%s missing from %v", want, caps.Effective)
		}
	}
	for _, gone := range []string{"CAP_CHOWN", "CAP_NET_RAW"} {
		if slices.Contains(caps.Bounding, gone) || slices.Contains(caps.Effective, gone) {
			t.Errorf("%s not dropped: %v", gone, caps.Effective)
		}
	}
	s = secSpec(t, SecurityContext{CapAdd: []string{"NET_BIND_SERVICE"}, CapDrop: []string{"ALL"}})
	if d := cmp.Diff([]string{"CAP_NET_BIND_SERVICE"}, s.Process.Capabilities.Effective); d != "" {
		t.Errorf("drop ALL, add one (-want +got):\n%s", d)
	}
	s = secSpec(t, SecurityContext{CapAdd: []string{"ALL"}})
	if !slices.Contains(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN") {
		t.Errorf("add ALL: CAP_SYS_ADMIN missing: %v", s.Process.Capabilities.Effective)
	}
}

func TestSecurityPrivilegedReadOnlyNoNewPrivs(t *testing.T) {
	s := secSpec(t, SecurityContext{})
	if s.Process.NoNewPrivileges || s.Root.Readonly || len(s.Linux.MaskedPaths) == 0 {
		t.Errorf("default: no_new_privs %v, read-only root %v, masked paths %v", s.Process.NoNewPrivileges, s.Root.Readonly, s.Linux.MaskedPaths)
	}
	if slices.Contains(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN") {
		t.Errorf("default has CAP_SYS_ADMIN")
	}
	s = secSpec(t, SecurityContext{NoNewPrivileges: true, ReadOnlyRootFS: true})
	if !s.Process.NoNewPrivileges || !s.Root.Readonly {
		t.Errorf("no_new_privs %v, read-only root %v; want both", s.Process.NoNewPrivileges, s.Root.Readonly)
	}
	s = secSpec(t, SecurityContext{Privileged: true})
	if !slices.Contains(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN") || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged: caps %v, masked %v, read-only %v", s.Process.Capabilities.Effective, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, m := range s.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && slices.Contains(m.Options, "ro") {
			t.Errorf("privileged: %s mounted read-only", m.Destination)
		}
	}
}

func TestEmptyDirFSGroup(t *testing.T) {
	dir := t.TempDir()
	if err := writeVolumes(dir, []Volume{{Name: "plain"}, {Name: "shared", FSGroup: i64(5678)}}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"plain": os.ModeDir | 0o777, "shared": os.ModeDir | os.ModeSetgid | 0o777} {
		fi, err := os.Stat(filepath.Join(dir, "volumes", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if gid := fileGID(t, filepath.Join(dir, "volumes", "shared")); gid != 5678 {
		t.Errorf("shared gid %d, want 5678", gid)
	}
}

func fileGID(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Gid
}

func TestSandboxSysctls(t *testing.T) {
	c := &Containerd{}
	c.pause.rootfs = t.TempDir()
	pod := &PodSpec{UID: "u", Name: "p", Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}}
	ctx := namespaces.WithNamespace(context.Background(), "test")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "sandbox-u"}, c.sandboxSpec(pod, "sandbox-u")...)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"kernel.shm_rmid_forced": "1"}, s.Linux.Sysctl); d != "" {
		t.Errorf("sandbox sysctls (-want +got):\n%s", d)
	}
}
