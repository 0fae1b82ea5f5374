package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// testNow is the clock of the table tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// ago is a metav1.Time d before testNow.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

// quantityEqual lets cmp compare resource quantities by value.
var quantityEqual = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

// errorKeys reduces errs to "Type field" strings, which is what the
// validation tests pin down (the detail text may be reworded).
func errorKeys(errs field.ErrorList) []string {
	var keys []string
	for _, e := range errs {
		keys = append(keys, fmt.Sprintf("%s %s", e.Type, e.Field))
	}
	return keys
}

// errKey builds one errorKeys entry.
func errKey(t field.ErrorType, path string) string { return fmt.Sprintf("%s %s", t, path) }

// Shorthands for the error types.
const (
	required     = field.ErrorTypeRequired
	invalid      = field.ErrorTypeInvalid
	notSupported = field.ErrorTypeNotSupported
	duplicate    = field.ErrorTypeDuplicate
	forbidden    = field.ErrorTypeForbidden
	notFound     = field.ErrorTypeNotFound
	tooMany      = field.ErrorTypeTooMany
)

// validationCase changes a valid object and names the errors that change
// must cause, exactly.
type validationCase[T runtime.Object] struct {
	name   string
	mutate func(T)
	want   []string
}

// runValidation applies each case to a fresh valid object from base and
// checks the errors of r.ValidateCreate.
func runValidation[T runtime.Object](t *testing.T, r *Resource, base func() T, cases []validationCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := base()
			if tc.mutate != nil {
				tc.mutate(obj)
			}
			errs := r.ValidateCreate(obj)
			if diff := cmp.Diff(tc.want, errorKeys(errs)); diff != "" {
				t.Errorf("validate errors (-want +got):\n%s\nall: %v", diff, errs)
			}
		})
	}
}

// runUpdate prepares and validates each case's update of a fresh old
// object from base through r, as the API server does.
func runUpdate[T runtime.Object](t *testing.T, r *Resource, status bool, base func() T, cases []validationCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := base()
			obj := old.DeepCopyObject().(T)
			tc.mutate(obj)
			var errs field.ErrorList
			if status {
				r.PrepareForStatusUpdate(obj, old)
				errs = r.ValidateStatusUpdate(obj, old)
			} else {
				r.PrepareForUpdate(obj, old)
				errs = r.ValidateUpdate(obj, old)
			}
			if diff := cmp.Diff(tc.want, errorKeys(errs)); diff != "" {
				t.Errorf("update errors (-want +got):\n%s\nall: %v", diff, errs)
			}
		})
	}
}

// stored gives an object the metadata the API server sets on create and
// runs r's create preparation, so it looks as read back from the store.
func stored[T runtime.Object](r *Resource, obj T) T {
	r.PrepareForCreate(obj)
	m := any(obj).(metav1.Object)
	m.SetUID("6b9f0d5c-0000-4000-8000-000000000001")
	m.SetCreationTimestamp(ago(time.Hour))
	m.SetResourceVersion("7")
	return obj
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "nginx",
				Image: "nginx:1.27",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
			}},
		},
	}
}
