package apiserver

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/store"
)

func TestPodNode(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	for name, node := range map[string]string{"bound": "n1", "unbound": ""} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"nodeName": "label-not-spec"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox",
				Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}}}},
		}
		if _, err := ts.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, want string
		err        error
	}{
		{"bound", "n1", nil},
		{"unbound", "", nil},
		{"missing", "", store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ts.PodNode(ctx, "default", tc.name)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("PodNode(default, %s) = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
			}
		})
	}
}

// PodNode answers from the decoded pod the watchers left in the cache when
// it holds the pod's current revision.
func TestPodNodeFromDecodedCache(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := ts.store.Get(ctx, "/registry/pods/default/p")
	if err != nil {
		t.Fatal(err)
	}
	marked := pod.DeepCopy()
	marked.Spec.NodeName = "from-cache"
	ts.objects = newRevCache(DefaultCacheBytes, objectWeight) // drop what the create kept
	ts.objects.get(kv.Key, kv.ModRevision, func() (runtime.Object, error) { return marked, nil })
	if got, err := ts.PodNode(ctx, "default", "p"); got != "from-cache" || err != nil {
		t.Errorf("PodNode with the pod's revision cached = %q, %v; want from-cache", got, err)
	}
}
