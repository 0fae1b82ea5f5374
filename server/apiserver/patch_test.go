package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestPatchLimits checks the limits that keep one small patch from
// growing an object, or the server's memory, without bound.
func TestPatchLimits(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pod := testPod("web", nil)
	pod.Annotations = map[string]string{"a": strings.Repeat("x", 1024)}
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	// Each copy doubles the document: 13 of them make 8 MiB of 1 KiB.
	var doubling []string
	for i := range 13 {
		doubling = append(doubling, fmt.Sprintf(`{"op":"copy","from":"/metadata/annotations","path":"/metadata/annotations/k%d"}`, i))
	}
	tooMany := strings.Repeat(`{"op":"test","path":"/metadata/name","value":"web"},`, 10000) // the limit, as in Kubernetes
	tooMany = "[" + tooMany + `{"op":"test","path":"/metadata/name","value":"web"}]`
	// A 2 MiB object that a 1.5 MiB patch takes past the 3 MiB limit.
	setup := fmt.Sprintf(`{"status":{"message":%q}}`, strings.Repeat("m", 2<<20))
	if code, st := rawRequest(t, ts, "PATCH", "/api/v1/namespaces/default/pods/web/status", string(types.MergePatchType), []byte(setup)); code != http.StatusOK {
		t.Fatalf("PATCH status.message = %d %q, want 200", code, st.Message)
	}
	reason := strings.Repeat("r", 3<<19)
	cases := []struct {
		name, path string
		pt         types.PatchType
		patch      string
		code       int
	}{
		{"copies past the copy limit", "", types.JSONPatchType, "[" + strings.Join(doubling, ",") + "]", http.StatusUnprocessableEntity},
		{"more operations than allowed", "", types.JSONPatchType, tooMany, http.StatusRequestEntityTooLarge},
		{"a result past the object limit", "/status", types.JSONPatchType,
			fmt.Sprintf(`[{"op":"add","path":"/status/reason","value":%q}]`, reason), http.StatusRequestEntityTooLarge},
		{"a merge result past the object limit", "/status", types.MergePatchType,
			fmt.Sprintf(`{"status":{"reason":%q}}`, reason), http.StatusRequestEntityTooLarge},
		{"a strategic result past the object limit", "/status", types.StrategicMergePatchType,
			fmt.Sprintf(`{"status":{"reason":%q}}`, reason), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, st := rawRequest(t, ts, "PATCH", "/api/v1/namespaces/default/pods/web"+tc.path, string(tc.pt), []byte(tc.patch))
			if code != tc.code {
				t.Errorf("PATCH = %d %q, want %d", code, st.Message, tc.code)
			}
		})
	}
	got, err := ts.client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got.Annotations) != 1 || got.Status.Reason != "" {
		t.Errorf("after refused patches: %d annotations, reason of %d bytes, want 1 and none", len(got.Annotations), len(got.Status.Reason))
	}
}

func TestNestingDepth(t *testing.T) {
	for doc, want := range map[string]int{
		`1`:                 0,
		`{"a":[1,{"b":2}]}`: 3,
		`{"a":"[[[{{{"}`:    1,
		`{"a":"\\"}`:        1,
		`{"a":"\"[[["}`:     1,
		`[[[]],[]]`:         3,
		`{"a":{"b":{}}}`:    3,
		`]]]]`:              0,
	} {
		if got := nestingDepth([]byte(doc)); got != want {
			t.Errorf("nestingDepth(%s) = %d, want %d", doc, got, want)
		}
	}
}

func TestPatchDepthLimit(t *testing.T) {
	deep := `{"metadata":{"annotations":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "}}"
	for _, pt := range []types.PatchType{types.MergePatchType, types.StrategicMergePatchType} {
		_, err := patchJSON(pt, []byte(`{"metadata":{}}`), []byte(deep), &corev1.Pod{})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "302 levels deep") {
			t.Errorf("%s patch nested 300 deep: err = %v, want 400 naming the depth", pt, err)
		}
	}
	shallow := `{"metadata":{"annotations":{"a":"b"}}}`
	if _, err := patchJSON(types.MergePatchType, []byte(`{"metadata":{}}`), []byte(shallow), &corev1.Pod{}); err != nil {
		t.Errorf("shallow merge patch: %v", err)
	}
}
