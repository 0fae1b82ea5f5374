package apiserver

import (
	"bytes"
	"context"
	"testing"

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
		if keptJSON, err := encodeStored(kept); err != nil || !bytes.Equal(keptJSON, kv.Value) {
			t.Errorf("%s: stored form of the kept pod:\n%s\nstored:\n%s", what, keptJSON, kv.Value)
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

// An object whose stored form differs from it visibly (a string that is
// not UTF-8) is not kept.
func TestKeepDecodedSkipsInvalidUTF8(t *testing.T) {
	ts := newTestServer(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{"note": "bad \xff byte"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	data, err := encodeStored(pod)
	if err != nil {
		t.Fatal(err)
	}
	ts.keepDecoded(podsResource, "/registry/pods/default/p", 7, pod, data)
	if _, ok := ts.objects.peek("/registry/pods/default/p", 7); ok {
		t.Error("a pod with an annotation that is not UTF-8 was kept decoded")
	}
	ts.keepDecoded(podsResource, "/registry/pods/default/q", 8, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "q"}}, []byte(`{}`))
	kept, ok := ts.objects.peek("/registry/pods/default/q", 8)
	if !ok {
		t.Fatal("a valid pod was not kept")
	}
	if m := kept.(*corev1.Pod); m.ResourceVersion != "8" || m.Kind != "Pod" {
		t.Errorf("kept pod has resourceVersion %q kind %q, want 8 and Pod", m.ResourceVersion, m.Kind)
	}
}
