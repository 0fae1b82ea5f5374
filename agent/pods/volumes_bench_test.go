package pods

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkPodVolumes is what the node adds to a pod's start and removal
// for a ConfigMap volume and a Secret volume (its tmpfs mounted and
// unmounted): payloads, atomic writes, teardown.
func BenchmarkPodVolumes(b *testing.B) {
	m, err := NewManager(Config{Runtime: fakeRuntime(), Reporter: newRecorder(), DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	objs := testObjects()
	pod := newPod("bench", "")
	vols := []corev1.Volume{
		cmVolume("cfg", "cfg"),
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
	}
	i := 0
	for b.Loop() {
		i++
		pod.UID = types.UID(fmt.Sprintf("uid-%d", i))
		for j := range vols {
			if _, err := m.setUpVolume(context.Background(), pod, &vols[j], &objs); err != nil {
				b.Fatal(err)
			}
		}
		if err := m.removeVolumes(pod.UID); err != nil {
			b.Fatal(err)
		}
	}
}
