package nodes

import (
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/internal/envelope"
)

// BenchmarkTrackPod is what a session spends on the references of a pod
// that comes to its node: one decode of the stored pod and the walk of its
// spec.
func BenchmarkTrackPod(b *testing.B) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Env: []corev1.EnvVar{{Name: "A", Value: "1"}}}},
			Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}}},
	}
	value, err := envelope.Encode(pod, "v1", "Pod")
	if err != nil {
		b.Fatal(err)
	}
	ss := &session{svc: &Service{lg: slog.New(slog.DiscardHandler)}, node: "n1"}
	b.ReportAllocs()
	for b.Loop() {
		ss.refs = newRefs()
		if got := ss.trackPod("/registry/pods/default/web-1", value); len(got) != 1 {
			b.Fatalf("trackPod = %v, want the ConfigMap", got)
		}
	}
}
