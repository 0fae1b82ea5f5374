package apiserver

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestRevCacheBytes checks that a cache of large values stays within its
// byte limit, however many are put in, and keeps the most recent.
func TestRevCacheBytes(t *testing.T) {
	const limit = 8 << 20
	encoded := newRevCache(limit, bytesLen)
	decoded := newRevCache(limit, objectWeight)
	for i := range 200 {
		key := fmt.Sprintf("/registry/pods/default/p%d", i%20)
		value := []byte(strings.Repeat("v", 1<<20))
		encoded.get(key, int64(i), func() ([]byte, error) { return value, nil })
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: key}, Status: corev1.PodStatus{Message: string(value)}}
		decoded.get(key, int64(i), func() (runtime.Object, error) { return pod, nil })
		for name, c := range map[string]interface{ size() (int, int) }{"encoded": encoded, "decoded": decoded} {
			if n, bytes := c.size(); bytes > limit || n == 0 {
				t.Fatalf("%s cache after %d inserts: %d entries of %d bytes, want 1 or more within %d", name, i+1, n, bytes, limit)
			}
		}
	}
	if _, ok := encoded.peek("/registry/pods/default/p19", 199); !ok {
		t.Errorf("the last value put in is not held")
	}
	huge := []byte(strings.Repeat("h", limit+1))
	encoded.get("/registry/pods/default/huge", 300, func() ([]byte, error) { return huge, nil })
	if _, ok := encoded.peek("/registry/pods/default/huge", 300); ok {
		t.Errorf("a value over the limit is held")
	}
}
