//go:build integration

package pods

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestIntegrationAPIDataVolumes runs a pod on containerd that reads a
// ConfigMap and a Secret through volumes, a subPath and its environment,
// and checks that an update of the ConfigMap reaches the mounted file
// without a restart while the subPath keeps the old content.
func TestIntegrationAPIDataVolumes(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("apidata", "")
	c := &pod.Spec.Containers[0]
	c.Command = []string{"sh", "-c", "echo started $(MODE); exec sleep 1000"}
	c.Env = []corev1.EnvVar{{Name: "MODE", ValueFrom: cmKey("cfg", "mode", false)}, {Name: "PASS", ValueFrom: secretKey("creds", "password", false)}}
	pod.Spec.Volumes = []corev1.Volume{
		cmVolume("cfg", "cfg"),
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: mode(0o400)}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
	}
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/cfg"}, {Name: "cfg", MountPath: "/etc/mode", SubPath: "mode"},
		{Name: "creds", MountPath: "/etc/creds"}, {Name: "info", MountPath: "/etc/info"},
	}
	h := startInt(t, e, Config{})
	t.Cleanup(func() {
		// Whatever the test left mounted goes before the temporary
		// directories do.
		entries, _ := os.ReadDir(h.m.podVolumesDir())
		for _, d := range entries {
			if err := removeVolumeDirs(filepath.Join(h.m.podVolumesDir(), d.Name())); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	h.m.SetObjects(testObjects())
	h.m.SetPods([]*corev1.Pod{pod})
	h.rep.waitStatus(t, pod.UID, intWait, "running", allRunning)

	checks := []struct{ cmd, want string }{
		{"cat /etc/cfg/mode", "fast"},
		{"cat /etc/mode", "fast"},
		{"cat /etc/creds/password", "s3cret"},
		{"stat -L -c %a /etc/creds/password", "400\n"},
		{"cat /etc/info/name", "apidata"},
		{"echo $MODE $PASS", "fast s3cret\n"},
		{"grep ' /etc/creds ' /proc/mounts | cut -d' ' -f3", "tmpfs\n"},
		{"touch /etc/cfg/x 2>/dev/null || echo read-only", "read-only\n"},
	}
	for _, ch := range checks {
		if out, _ := h.exec(t, pod, "c0", "sh", "-c", ch.cmd); out != ch.want {
			t.Errorf("%s = %q, want %q", ch.cmd, out, ch.want)
		}
	}
	waitLogs(t, h, pod, "c0", "started fast\n")

	updated := testObjects()
	updated.ConfigMaps[types.NamespacedName{Namespace: "ns", Name: "cfg"}] = &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"mode": "slow"}}
	h.m.SetObjects(updated)
	deadline := time.Now().Add(intWait)
	for {
		out, _ := h.exec(t, pod, "c0", "cat", "/etc/cfg/mode")
		if out == "slow" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/etc/cfg/mode = %q after the update, want slow", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _ := h.exec(t, pod, "c0", "cat", "/etc/mode"); out != "fast" {
		t.Errorf("subPath after the update = %q, want the content it was mounted with", out)
	}
	if out, _ := h.exec(t, pod, "c0", "ls", "/etc/cfg"); strings.Contains(out, "LEVEL") {
		t.Errorf("key removed from the ConfigMap still listed: %q", out)
	}

	h.m.SetPods(nil)
	podDir := filepath.Join(h.m.podVolumesDir(), string(pod.UID))
	deadline = time.Now().Add(intWait)
	for {
		if _, err := os.Stat(podDir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod's volumes were not removed with it")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
