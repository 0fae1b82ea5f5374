package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/internal/envelope"
)

func TestDecodeObject(t *testing.T) {
	want := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "9"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.43.0.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	pb, err := envelope.Encode(want, "v1", "Service")
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"protobuf": pb, "JSON": js} {
		got := &corev1.Service{}
		if err := DecodeObject(data, got); err != nil {
			t.Fatalf("%s: DecodeObject: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: DecodeObject (-want +got):\n%s", name, diff)
		}
	}
	if err := DecodeObject(pb[:len(pb)-12], &corev1.Service{}); !errors.Is(err, envelope.ErrMalformed) {
		t.Errorf("DecodeObject of a cut envelope = %v, want ErrMalformed", err)
	}
}
