package envelope

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

var upstream = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)

func testPod(nodeName, rv string) *corev1.Pod {
	now := metav1.NewTime(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", UID: "u-1", ResourceVersion: rv,
			Labels: map[string]string{"app": "web"}, CreationTimestamp: now},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.7", StartTime: &now},
	}
}

func upstreamEncode(t *testing.T, obj runtime.Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := upstream.Encode(obj, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEncodeAsUpstream(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  interface {
			runtime.Object
			Message
		}
	}{
		{"pod", testPod("n1", "")},
		{"pod with resourceVersion", testPod("", "12")},
		{"node", &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "n1"},
			Spec: corev1.NodeSpec{PodCIDR: "10.42.1.0/24"}}},
		{"service", &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.10", Ports: []corev1.ServicePort{{Port: 80}}}}},
		{"empty endpoints", &corev1.Endpoints{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Endpoints"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gvk := tc.obj.GetObjectKind().GroupVersionKind()
			got, err := Encode(tc.obj, gvk.GroupVersion().String(), gvk.Kind)
			if err != nil {
				t.Fatal(err)
			}
			if want := upstreamEncode(t, tc.obj); !bytes.Equal(got, want) {
				t.Errorf("Encode = %q, want the serializer's %q", got, want)
			}
			if !Is(got) {
				t.Errorf("Is(Encode(...)) = false")
			}
		})
	}
}

func TestDecode(t *testing.T) {
	want := testPod("n1", "")
	data := upstreamEncode(t, want)
	got := &corev1.Pod{}
	av, kind, err := Decode(data, got)
	if err != nil {
		t.Fatal(err)
	}
	if av != "v1" || kind != "Pod" {
		t.Errorf("Decode named %q %q, want v1 Pod", av, kind)
	}
	want.TypeMeta = metav1.TypeMeta{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
}

func TestWithResourceVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  runtime.Object
	}{
		{"without one", testPod("n1", "")},
		{"replacing one", testPod("n1", "7")},
		{"empty metadata", &corev1.Endpoints{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Endpoints"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := upstreamEncode(t, tc.obj)
			orig := bytes.Clone(data)
			got, err := WithResourceVersion(data, 1234567)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, orig) {
				t.Fatal("WithResourceVersion changed its input")
			}
			want := tc.obj.DeepCopyObject()
			m := want.(metav1.Object)
			m.SetResourceVersion("1234567")
			// The upstream decoder reads the result as the object with
			// the revision set.
			dec, _, err := upstream.Decode(got, nil, nil)
			if err != nil {
				t.Fatalf("decoding the result: %v", err)
			}
			if diff := cmp.Diff(want, dec); diff != "" {
				t.Errorf("WithResourceVersion (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodNodeName(t *testing.T) {
	for _, want := range []string{"", "hollow-00042"} {
		got, err := PodNodeName(upstreamEncode(t, testPod(want, "")))
		if err != nil || got != want {
			t.Errorf("PodNodeName = %q, %v; want %q", got, err, want)
		}
	}
}

func TestMalformed(t *testing.T) {
	data := upstreamEncode(t, testPod("n1", ""))
	for _, bad := range [][]byte{nil, []byte(`{"kind":"Pod"}`), Magic, append(bytes.Clone(Magic), 0x0a, 0x05)} {
		if _, _, err := Decode(bad, &corev1.Pod{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", bad, err)
		}
		if _, err := WithResourceVersion(bad, 1); !errors.Is(err, ErrMalformed) {
			t.Errorf("WithResourceVersion(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	// No truncation panics (one that ends on a field boundary reads as a
	// shorter message).
	for i := range data {
		cut := data[:i]
		Decode(cut, &corev1.Pod{})
		WithResourceVersion(cut, 1)
		PodNodeName(cut)
	}
}

// A list built from stored objects decodes, with the upstream decoder, as
// the list of those objects with their revisions.
func TestEncodeList(t *testing.T) {
	pods := []*corev1.Pod{testPod("n1", ""), testPod("", "")}
	pods[1].Name = "web-2"
	var items [][]byte
	want := &corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"},
		ListMeta: metav1.ListMeta{ResourceVersion: "99", Continue: "next"}}
	for i, p := range pods {
		it, err := ObjectWithResourceVersion(upstreamEncode(t, p), int64(10+i))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
		p := *p.DeepCopy()
		p.TypeMeta = metav1.TypeMeta{}
		p.ResourceVersion = strconv.Itoa(10 + i)
		want.Items = append(want.Items, p)
	}
	lm, err := want.ListMeta.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := upstream.Decode(EncodeList("v1", "PodList", lm, items), nil, nil)
	if err != nil {
		t.Fatalf("decoding the list: %v", err)
	}
	if diff := cmp.Diff(runtime.Object(want), got); diff != "" {
		t.Errorf("EncodeList (-want +got):\n%s", diff)
	}
	empty, _, err := upstream.Decode(EncodeList("v1", "PodList", nil, nil), nil, nil)
	if err != nil || len(empty.(*corev1.PodList).Items) != 0 {
		t.Errorf("empty list decodes as %v, %v", empty, err)
	}
}
