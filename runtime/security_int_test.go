//go:build integration

package runtime_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// TestIntegrationSecurityContext runs busybox as user 1234, group 5678,
// with fsGroup 2000 on an emptyDir, a read-only root and no capabilities,
// and refuses a root image under runAsNonRoot.
func TestIntegrationSecurityContext(t *testing.T) {
	e := newEnv(t)
	fsGroup := int64(2000)
	pod := &runtime.PodSpec{UID: "sec-1", Namespace: "default", Name: "sec",
		Volumes: []runtime.Volume{{Name: "data", FSGroup: &fsGroup}}}
	uid, gid := int64(1234), int64(5678)
	e.runPod(t, pod, &runtime.ContainerSpec{Name: "c", Command: []string{"sleep", "3600"},
		Mounts: []runtime.Mount{{Volume: "data", Path: "/data"}},
		Security: runtime.SecurityContext{RunAsUser: &uid, RunAsGroup: &gid, SupplementalGroups: []int64{fsGroup},
			RunAsNonRoot: true, ReadOnlyRootFS: true, CapDrop: []string{"ALL"}, NoNewPrivileges: true}})
	runtimetest.WaitContainer(t, e.rt, pod.UID, "c", 20*time.Second, running)
	checks := []struct {
		cmd, want string
		code      int
	}{
		{"id", "uid=1234 gid=5678 groups=2000,5678", 0},
		{"touch /data/f && stat -c '%u %g %A' /data /data/f", "0 2000 drwxrwsrwx\n1234 2000 -rw-r--r--", 0},
		{"touch /rootfs-file 2>&1", "touch: /rootfs-file: Read-only file system", 1},
		{"grep -E '^(CapEff|NoNewPrivs)' /proc/self/status", "CapEff:\t0000000000000000\nNoNewPrivs:\t1", 0},
	}
	for _, c := range checks {
		out, code := e.exec(t, pod.UID, "c", "sh", "-c", c.cmd)
		if code != c.code || strings.TrimSpace(out) != c.want {
			t.Errorf("exec %q = %q, exit %d; want %q, exit %d", c.cmd, out, code, c.want, c.code)
		}
	}
	_, err := e.rt.StartContainer(testCtx(t), pod.UID, &runtime.ContainerSpec{Name: "root", Image: e.image,
		Command: []string{"true"}, Security: runtime.SecurityContext{RunAsNonRoot: true}})
	if !errors.Is(err, runtime.ErrInvalid) || err.Error() != "container has runAsNonRoot and image will run as root" {
		t.Errorf("root image under runAsNonRoot: %v", err)
	}
}
