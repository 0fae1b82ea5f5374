package apiserver

import (
	"bytes"
	"context"
	"testing"

	"github.com/minik-dev/minik/server/registry"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a write keeps in the decode cache stands for what decoding the
// stored bytes gives: the same protobuf, the same stored JSON, and equal to
// the comparisons updates make.
func TestKeepDecodedStandsForStored(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	rest := ts.client.CoreV1().RESTClient()
	// Through JSON, with what JSON does not keep as sent: a time with a
	// fraction of a second, a quantity in a long form, empty lists.
	body := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"web"},"annotations":{}},
		"spec":{"containers":[{"name":"c","image":"busybox","args":[],"resources":{"requests":{"cpu":"0.100","memory":"16777216"}}}],
		"tolerations":[],"nodeName":"n1"},
		"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-01-02T03:04:05.678Z"}]}}`)
	if err := rest.Post().AbsPath("/api/v1/namespaces/default/pods").SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error(); err != nil {
		t.Fatalf("create: %v", err)
	}
	check := func(what string, semantic bool) {
		t.Helper()
		kv, err := ts.store.Get(ctx, "/registry/pods/default/p")
		if err != nil {
			t.Fatal(err)
		}
		kept, ok := ts.objects.peek(kv.Key, kv.ModRevision)
		if !ok {
			t.Fatalf("%s: the write kept no decoded pod at revision %d", what, kv.ModRevision)
		}
		decoded, err := decodeStored(podsResource, kv.Value, kv.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		keptPB, err := encodeProtobuf(kept)
		if err != nil {
			t.Fatal(err)
		}
		decodedPB, err := encodeProtobuf(decoded)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(keptPB, decodedPB) {
			t.Errorf("%s: protobuf of the kept pod differs from that of the stored one", what)
		}
		if keptStored, err := registry.EncodeStored(podsResource, kept); err != nil || !bytes.Equal(keptStored, kv.Value) {
			t.Errorf("%s: stored form of the kept pod:\n%s\nstored:\n%s", what, keptStored, kv.Value)
		}
		if semantic && !apiequality.Semantic.DeepEqual(kept, decoded) {
			t.Errorf("%s: kept pod and stored pod are not semantically equal:\n%+v\n%+v", what, kept, decoded)
		}
	}
	check("create", true)
	st := &corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.3",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Unix(1700000000, 0)}}}
	if _, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", "", st); err != nil {
		t.Fatalf("UpdatePodStatus: %v", err)
	}
	check("status update", true)
	// A time finer than a second stays in the kept copy, but both
	// encodings drop it alike.
	st.Conditions[0].LastTransitionTime = metav1.Unix(1700000001, 123456789)
	if _, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", "", st); err != nil {
		t.Fatalf("UpdatePodStatus: %v", err)
	}
	check("status update with nanoseconds", false)
}

// A written object is handed to the cache at the revision written, even
// one with a string that is not UTF-8, which the stored form keeps as it
// is; a failed write is not.
func TestStoringKeepsWhatIsStored(t *testing.T) {
	ts := newTestServer(t)
	odd := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{"note": "odd \xff byte"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	data, err := registry.EncodeStored(podsResource, odd)
	if err != nil {
		t.Fatal(err)
	}
	ts.storing(podsResource, "/registry/pods/default/p", odd, data)(7)
	kept, ok := ts.objects.peek("/registry/pods/default/p", 7)
	if !ok {
		t.Fatal("a pod with an annotation that is not UTF-8 was not kept")
	}
	decoded, err := decodeStored(podsResource, data, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(kept, decoded) {
		t.Errorf("kept pod differs from the stored one:\n%+v\n%+v", kept, decoded)
	}
	if m := kept.(*corev1.Pod); m.ResourceVersion != "7" || m.Kind != "Pod" {
		t.Errorf("kept pod has resourceVersion %q kind %q, want 7 and Pod", m.ResourceVersion, m.Kind)
	}
	ts.storing(podsResource, "/registry/pods/default/r", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "r"}}, []byte(`{}`))(0)
	for k := range ts.objects.m {
		if k.key == "/registry/pods/default/r" {
			t.Errorf("a failed write was kept decoded at revision %d", k.rev)
		}
	}
}

// A watcher that sees a change before its write has returned takes the
// object being written instead of decoding the stored bytes, if they are
// the same bytes.
func TestDecodeSharedTakesWriteInFlight(t *testing.T) {
	ts := newTestServer(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{"from": "write"}}}
	data := []byte(`{"metadata":{"name":"p","namespace":"default","labels":{"from":"stored"}}}`)
	done := ts.storing(podsResource, "/registry/pods/default/p", pod, data)
	other, err := ts.decodeShared(podsResource, "/registry/pods/default/p", []byte(`{"metadata":{"name":"p"}}`), 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := other.(*corev1.Pod).Labels["from"]; got != "" {
		t.Errorf("other bytes decoded with labels from %q, want none (decoded from the bytes)", got)
	}
	// The labels differ on purpose, to tell where the object came from.
	got, err := ts.decodeShared(podsResource, "/registry/pods/default/p", data, 5)
	if err != nil {
		t.Fatal(err)
	}
	if from := got.(*corev1.Pod).Labels["from"]; from != "write" || got.(*corev1.Pod).ResourceVersion != "5" {
		t.Errorf("decodeShared during the write: labels from %q, resourceVersion %q; want the write's object at 5", from, got.(*corev1.Pod).ResourceVersion)
	}
	done(5)
	if n := len(ts.writing.m); n != 0 {
		t.Errorf("writes in flight after done = %d, want 0", n)
	}
}
