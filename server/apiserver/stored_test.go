package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/internal/envelope"
	"github.com/minik-dev/minik/server/registry"
)

// Objects are stored in the protobuf envelope. Those an earlier version
// stored as JSON read alike through every path, in protobuf and in JSON,
// and are stored as protobuf once written again.
func TestStoredForms(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	jsonClient := ts.jsonClient(t)
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	// The pod as an earlier version stored it: created through the API,
	// then its stored bytes replaced by their JSON.
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const key = "/registry/pods/default/old"
	kv, err := ts.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := decodeStored(podsResource, kv.Value, kv.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	stored.(*corev1.Pod).ResourceVersion = ""
	old, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := ts.store.Update(ctx, key, old, kv.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ts.client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{ResourceVersion: formatRV(rev - 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	jw, err := jsonClient.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{ResourceVersion: formatRV(rev - 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer jw.Stop()

	for name, c := range map[string]kubernetes.Interface{"protobuf": ts.client, "JSON": jsonClient} {
		got, err := c.CoreV1().Pods("default").Get(ctx, "old", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s get: %v", name, err)
		}
		if got.UID != stored.(*corev1.Pod).UID || got.Labels["app"] != "web" || got.ResourceVersion != formatRV(rev) {
			t.Errorf("%s get = %+v, want uid %s, label app=web, resourceVersion %d", name, got.ObjectMeta, stored.(*corev1.Pod).UID, rev)
		}
		list, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 1 || list.Items[0].ResourceVersion != formatRV(rev) {
			t.Errorf("%s list = %v, %v; want the pod", name, list, err)
		}
	}
	for name, w := range map[string]watch.Interface{"protobuf": w, "JSON": jw} {
		select {
		case ev := <-w.ResultChan():
			p, ok := ev.Object.(*corev1.Pod)
			if ev.Type != watch.Modified || !ok || p.Labels["app"] != "web" || p.ResourceVersion != formatRV(rev) {
				t.Errorf("%s watch: %v %+v, want MODIFIED of the pod at %d", name, ev.Type, ev.Object, rev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s watch: no event", name)
		}
	}

	// Written again, it is stored as protobuf, and a client in either
	// encoding reads the same object from those bytes.
	got, err := jsonClient.CoreV1().Pods("default").Get(ctx, "old", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Labels["v"] = "2"
	if _, err := jsonClient.CoreV1().Pods("default").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err = ts.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !envelope.Is(kv.Value) {
		t.Fatalf("updated pod stored as %.40q…, want the protobuf envelope", kv.Value)
	}
	var raw corev1.Pod
	if err := registry.DecodeStored(kv.Value, &raw); err != nil || raw.ResourceVersion != "" || raw.Labels["v"] != "2" {
		t.Errorf("stored pod = %+v, %v; want label v=2 and no resourceVersion", raw.ObjectMeta, err)
	}
	for name, c := range map[string]kubernetes.Interface{"protobuf": ts.client, "JSON": jsonClient} {
		p, err := c.CoreV1().Pods("default").Get(ctx, "old", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s get: %v", name, err)
		}
		if p.Labels["v"] != "2" || p.UID != stored.(*corev1.Pod).UID || p.ResourceVersion != formatRV(kv.ModRevision) || !p.CreationTimestamp.Equal(&stored.(*corev1.Pod).CreationTimestamp) {
			t.Errorf("%s get after update = %+v, want label v=2, the same uid, resourceVersion %d", name, p.ObjectMeta, kv.ModRevision)
		}
	}
}

// A protobuf list, made from the stored bytes, holds what a JSON list,
// made from the decoded objects, holds: the same items with their
// resourceVersions, the list's revision and its continue token, for a
// whole list, a page and a filtered list.
func TestListFromStoredBytes(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	jsonClient := ts.jsonClient(t)
	for _, name := range []string{"a", "b", "c"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := ts.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The protobuf lists below are made from the stored bytes.
	kvs, rev, err := ts.store.List(ctx, "/registry/pods/default/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if protobufList(podsResource, kvs, metav1.ListMeta{ResourceVersion: formatRV(rev)}) == nil {
		t.Fatal("protobufList of the stored pods = nil")
	}
	for _, opts := range []metav1.ListOptions{{}, {Limit: 2}, {LabelSelector: "app in (a,c)"}} {
		pb, err := ts.client.CoreV1().Pods("default").List(ctx, opts)
		if err != nil {
			t.Fatalf("protobuf list %+v: %v", opts, err)
		}
		js, err := jsonClient.CoreV1().Pods("default").List(ctx, opts)
		if err != nil {
			t.Fatalf("JSON list %+v: %v", opts, err)
		}
		if len(pb.Items) == 0 || pb.Items[0].ResourceVersion == "" {
			t.Errorf("protobuf list %+v = %d items, first resourceVersion %q", opts, len(pb.Items), pb.Items[0].ResourceVersion)
		}
		// Items in protobuf carry no apiVersion and kind.
		for i := range js.Items {
			js.Items[i].TypeMeta = metav1.TypeMeta{}
		}
		if diff := cmp.Diff(js, pb); diff != "" {
			t.Errorf("list %+v, JSON (-) against protobuf (+):\n%s", opts, diff)
		}
	}
}

// A list sent empty in a field that JSON writes even when empty
// (projected.sources) reads back the same everywhere a JSON client looks:
// in the create response, a get and a watch event, as the stored form
// keeps it.
func TestEmptyListReadsAlike(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	rest := ts.client.CoreV1().RESTClient()
	watchReq, err := http.NewRequestWithContext(ctx, "GET", ts.url+"/api/v1/namespaces/default/pods?watch=1&resourceVersion=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(watchReq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
		"spec":{"containers":[{"name":"c","image":"busybox"}],"volumes":[{"name":"v","projected":{"sources":[]}}]}}`)
	created, err := rest.Post().AbsPath("/api/v1/namespaces/default/pods").SetHeader("Content-Type", "application/json").
		SetHeader("Accept", "application/json").Body(body).Do(ctx).Raw()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := rest.Get().AbsPath("/api/v1/namespaces/default/pods/p").SetHeader("Accept", "application/json").Do(ctx).Raw()
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	sources := func(what string, data []byte) string {
		t.Helper()
		var p struct {
			Spec struct {
				Volumes []struct {
					Projected struct {
						Sources json.RawMessage `json:"sources"`
					} `json:"projected"`
				} `json:"volumes"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(data, &p); err != nil || len(p.Spec.Volumes) != 1 {
			t.Fatalf("%s: %v in %s", what, err, data)
		}
		return string(p.Spec.Volumes[0].Projected.Sources)
	}
	want := sources("get", got)
	if c := sources("create response", created); c != want {
		t.Errorf("create response has sources %s, get has %s", c, want)
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatal(err)
	}
	if w := sources("watch event", ev.Object); w != want {
		t.Errorf("watch event has sources %s, get has %s", w, want)
	}
}
