package hollow

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecodePodKeepsWhatNodesRead(t *testing.T) {
	deleted := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", UID: "u-1", DeletionTimestamp: &deleted,
			Labels: map[string]string{"app": "web"}, ResourceVersion: "42",
		},
		Spec: corev1.PodSpec{
			NodeName: "hollow-1",
			Containers: []corev1.Container{
				{Name: "app", Image: "busybox", Command: []string{"sleep", "1d"}},
				{Name: "side", Image: "pause"},
			},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.7", QOSClass: corev1.PodQOSBurstable, HostIP: "10.0.0.1"},
	}
	data, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePod(data)
	if err != nil {
		t.Fatalf("decodePod: %v", err)
	}
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u-1", DeletionTimestamp: &deleted},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}, {Name: "side", Image: "pause"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.7", QOSClass: corev1.PodQOSBurstable},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decodePod (-want +got):\n%s", diff)
	}
	if _, err := decodePod([]byte(`{"metadata":`)); err == nil {
		t.Error("decodePod of truncated JSON: no error")
	}
}
