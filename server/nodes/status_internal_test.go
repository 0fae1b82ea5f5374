package nodes

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/api"
)

func TestDecodePodStatus(t *testing.T) {
	running, err := (&corev1.PodStatus{Phase: corev1.PodRunning}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ps      *api.PodStatus
		want    corev1.PodPhase
		wantErr bool
	}{
		{"protobuf", &api.PodStatus{StatusProtobuf: running, Status: []byte(`{"phase":"Failed"}`)}, corev1.PodRunning, false},
		{"json", &api.PodStatus{Status: []byte(`{"phase":"Pending"}`)}, corev1.PodPending, false},
		{"neither is an empty status", &api.PodStatus{}, "", false},
		{"bad protobuf", &api.PodStatus{StatusProtobuf: []byte{0xff}}, "", true},
		{"bad json", &api.PodStatus{Status: []byte(`{"phase":`)}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := decodePodStatus(tc.ps)
			if (err != nil) != tc.wantErr || st.Phase != tc.want {
				t.Errorf("decodePodStatus = phase %q, %v; want %q, error %v", st.Phase, err, tc.want, tc.wantErr)
			}
		})
	}
}
