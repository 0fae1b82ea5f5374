package nodes

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/envelope"
	"github.com/minik-dev/minik/server/registry"
)

// withRevision gives the stored pod, in either stored form, in the
// protobuf envelope with the revision as resourceVersion; jsonChanges
// gives the same pod as JSON.
func TestWithRevision(t *testing.T) {
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"metadata": `{"x":1}`}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	pods, _ := registry.Lookup("pods")
	stored, err := registry.EncodeStored(pods, pod)
	if err != nil {
		t.Fatal(err)
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
		name   string
		stored string
	}{
		{"protobuf", string(stored)},
		{"JSON of earlier versions", string(typed)},
		{"JSON without kind", string(untyped)},
		{"JSON with a resourceVersion", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","resourceVersion":"3"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := withRevision(api.ObjectKind_OBJECT_KIND_POD, []byte(tc.stored), 42)
			if err != nil {
				t.Fatalf("withRevision: %v", err)
			}
			if !envelope.Is(out) {
				t.Fatalf("withRevision returned %q, want the protobuf envelope", out)
			}
			want := &corev1.Pod{}
			if err := registry.DecodeStored([]byte(tc.stored), want); err != nil {
				t.Fatal(err)
			}
			want.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
			want.ResourceVersion = "42"
			got := &corev1.Pod{}
			if err := api.DecodeObject(out, got); err != nil {
				t.Fatalf("decoding what withRevision returned: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("withRevision (-want +got):\n%s", diff)
			}
			c := &api.Change{Action: api.Change_PUT, Kind: api.ObjectKind_OBJECT_KIND_POD, Namespace: "default", Name: "web", Object: out}
			js := jsonChanges([]*api.Change{c}, slog.New(slog.DiscardHandler))
			if len(js) != 1 || js[0].GetName() != "web" || js[0].GetAction() != api.Change_PUT {
				t.Fatalf("jsonChanges = %v, want the one change", js)
			}
			got = &corev1.Pod{}
			if err := json.Unmarshal(js[0].GetObject(), got); err != nil {
				t.Fatalf("jsonChanges gave %q: %v", js[0].GetObject(), err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("jsonChanges (-want +got):\n%s", diff)
			}
			if !envelope.Is(c.GetObject()) {
				t.Error("jsonChanges changed the shared change")
			}
		})
	}
}
