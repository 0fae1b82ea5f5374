package nodes

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/registry"
)

func TestWithRevision(t *testing.T) {
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"metadata": `{"x":1}`}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	typed, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	untyped, err := json.Marshal(&corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		stored  string
		spliced bool // the revision is put into the stored bytes
	}{
		{"typed object", string(typed), true},
		{"empty metadata", `{"kind":"Pod","apiVersion":"v1","metadata":{},"spec":{"nodeName":"n1"}}`, true},
		{"no kind", string(untyped), false},
		{"escaped kind", `{"kind":"P\u006fd","apiVersion":"v1","metadata":{"name":"web"}}`, false},
		{"resourceVersion already set", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","resourceVersion":"3"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := registry.WithResourceVersion([]byte(tc.stored), 42) != nil; got != tc.spliced {
				t.Errorf("WithResourceVersion(%s) spliced = %v, want %v", tc.stored, got, tc.spliced)
			}
			out, err := withRevision(api.ObjectKind_OBJECT_KIND_POD, []byte(tc.stored), 42)
			if err != nil {
				t.Fatalf("withRevision: %v", err)
			}
			var got, want corev1.Pod
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("withRevision returned invalid JSON %s: %v", out, err)
			}
			if err := json.Unmarshal([]byte(tc.stored), &want); err != nil {
				t.Fatal(err)
			}
			want.ResourceVersion = "42"
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("withRevision(%s) (-want +got):\n%s", tc.stored, diff)
			}
		})
	}
}
