//go:build integration

package pods

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestIntegrationServiceAccountVolume runs a pod on containerd with the
// credentials volume ServiceAccount admission adds, and checks that the
// container reads its token, the cluster CA and its namespace, and that a
// renewed token reaches the mounted file without a restart.
func TestIntegrationServiceAccountVolume(t *testing.T) {
	const dir = "/var/run/secrets/kubernetes.io/serviceaccount"
	e := newIntEnv(t)
	clk := &clock{now: time.Now()}
	src := &fakeTokens{clock: clk}
	pod := newPod("creds", "")
	pod.Spec.ServiceAccountName = "robot"
	seconds := int64(3607)
	pod.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: mode(0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &seconds}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}}
	pod.Spec.Containers[0].Command = []string{"sleep", "1000"}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-abcde", MountPath: dir, ReadOnly: true}}
	h := startInt(t, e, Config{Tokens: src, Now: clk.Now})
	t.Cleanup(func() {
		// The volume's tmpfs goes before the temporary directories do.
		h.stop(t)
		entries, _ := os.ReadDir(h.m.podVolumesDir())
		for _, d := range entries {
			if err := removeVolumeDirs(filepath.Join(h.m.podVolumesDir(), d.Name())); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	objs := testObjects()
	objs.ConfigMaps[types.NamespacedName{Namespace: "ns", Name: "kube-root-ca.crt"}] = &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "CA PEM"}}
	h.m.SetObjects(objs)
	h.m.SetPods([]*corev1.Pod{pod})
	h.rep.waitStatus(t, pod.UID, intWait, "running", allRunning)

	checks := []struct{ cmd, want string }{
		{"cat " + dir + "/token", "robot/creds-token-1"},
		{"cat " + dir + "/ca.crt", "CA PEM"},
		{"cat " + dir + "/namespace", "ns"},
		{"stat -L -c %a " + dir + "/token", "644\n"},
		{"grep ' " + dir + " ' /proc/mounts | cut -d' ' -f3", "tmpfs\n"},
		{"touch " + dir + "/x 2>/dev/null || echo read-only", "read-only\n"},
	}
	for _, ch := range checks {
		if out, _ := h.exec(t, pod, "c0", "sh", "-c", ch.cmd); out != ch.want {
			t.Errorf("%s = %q, want %q", ch.cmd, out, ch.want)
		}
	}

	clk.Add(time.Duration(seconds) * time.Second * 81 / 100)
	deadline := time.Now().Add(intWait)
	for {
		out, _ := h.exec(t, pod, "c0", "cat", dir+"/token")
		if out == "robot/creds-token-2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token = %q once renewal was due, want the second one", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
