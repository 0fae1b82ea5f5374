package apiserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestRevCacheExpires checks that values added before a cutoff go, and
// later ones stay.
func TestRevCacheExpires(t *testing.T) {
	c := newRevCache(DefaultCacheBytes, bytesLen)
	c.get("a", 1, func() ([]byte, error) { return []byte("old"), nil })
	time.Sleep(time.Millisecond) // times strictly apart
	cutoff := time.Now()
	time.Sleep(time.Millisecond)
	c.get("b", 2, func() ([]byte, error) { return []byte("new"), nil })
	c.expire(cutoff)
	if _, ok := c.peek("a", 1); ok {
		t.Errorf("a value added before the cutoff is held")
	}
	if _, ok := c.peek("b", 2); !ok {
		t.Errorf("a value added after the cutoff is gone")
	}
	if n, bytes := c.size(); n != 1 || bytes != 3 {
		t.Errorf("size() = %d entries of %d bytes, want 1 of 3", n, bytes)
	}
}
