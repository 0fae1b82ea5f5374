package apiserver

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// managers lists the managedFields entries of m as "manager/operation"
// with the fields each owns, for comparison.
func managers(m metav1.Object) map[string]string {
	out := map[string]string{}
	for _, e := range m.GetManagedFields() {
		fields := ""
		if e.FieldsV1 != nil {
			fields = string(e.FieldsV1.Raw)
		}
		key := e.Manager + "/" + string(e.Operation)
		if e.Subresource != "" {
			key += "/" + e.Subresource
		}
		out[key] = fields
	}
	return out
}

func TestApplyCreatesThenConflictsThenForces(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	cms := ts.jsonClient(t).CoreV1().ConfigMaps("default")

	// alice's apply creates the object and owns what she set.
	cm, err := cms.Apply(ctx, corev1ac.ConfigMap("cfg", "default").WithData(map[string]string{"a": "1", "b": "1"}),
		metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("Apply(alice) = %v", err)
	}
	want := map[string]string{"alice/Apply": `{"f:data":{"f:a":{},"f:b":{}}}`}
	if diff := cmp.Diff(want, managers(cm)); diff != "" {
		t.Errorf("managedFields after the creating apply (-want +got):\n%s", diff)
	}

	// bob sets a field alice owns to another value: 409 naming it and her.
	_, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", "default").WithData(map[string]string{"a": "2", "c": "2"}),
		metav1.ApplyOptions{FieldManager: "bob"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("Apply(bob) = %v, want a 409 Conflict", err)
	}
	st := err.(apierrors.APIStatus).Status()
	var fields []string
	for _, c := range st.Details.Causes {
		fields = append(fields, c.Field)
	}
	if diff := cmp.Diff([]string{".data.a"}, fields); diff != "" {
		t.Errorf("conflict causes' fields (-want +got):\n%s", diff)
	}
	if !strings.Contains(st.Message, `"alice"`) {
		t.Errorf("conflict message %q does not name the manager alice", st.Message)
	}
	if got, _ := cms.Get(ctx, "cfg", metav1.GetOptions{}); got.Data["a"] != "1" || got.Data["c"] != "" {
		t.Errorf("after the refused apply data = %v, want it unchanged", got.Data)
	}

	// With force bob takes the field over; alice keeps the other.
	cm, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", "default").WithData(map[string]string{"a": "2", "c": "2"}),
		metav1.ApplyOptions{FieldManager: "bob", Force: true})
	if err != nil {
		t.Fatalf("Apply(bob, force) = %v", err)
	}
	if diff := cmp.Diff(map[string]string{"a": "2", "b": "1", "c": "2"}, cm.Data); diff != "" {
		t.Errorf("data after the forced apply (-want +got):\n%s", diff)
	}
	want = map[string]string{
		"alice/Apply": `{"f:data":{"f:b":{}}}`,
		"bob/Apply":   `{"f:data":{"f:a":{},"f:c":{}}}`,
	}
	if diff := cmp.Diff(want, managers(cm)); diff != "" {
		t.Errorf("managedFields after the forced apply (-want +got):\n%s", diff)
	}

	// A field alice no longer applies is removed; one of bob's stays.
	cm, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", "default").WithData(map[string]string{}),
		metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("Apply(alice, nothing) = %v", err)
	}
	if diff := cmp.Diff(map[string]string{"a": "2", "c": "2"}, cm.Data); diff != "" {
		t.Errorf("data after alice dropped b (-want +got):\n%s", diff)
	}
}

func TestWritesRecordManagedFields(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx, testPod("web", nil), metav1.CreateOptions{FieldManager: "maker"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, ok := managers(pod)["maker/Update"]; !ok {
		t.Fatalf("managedFields after create = %v, want an Update by maker", managers(pod))
	}
	pod.Labels = map[string]string{"tier": "web"}
	pod, err = pods.Update(ctx, pod, metav1.UpdateOptions{FieldManager: "labeller"})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := managers(pod)["labeller/Update"]; got != `{"f:metadata":{"f:labels":{".":{},"f:tier":{}}}}` {
		t.Errorf("labeller's fields after update = %s", got)
	}
	pod, err = pods.Patch(ctx, "web", types.MergePatchType, []byte(`{"status":{"message":"hi"}}`),
		metav1.PatchOptions{FieldManager: "reporter"}, "status")
	if err != nil {
		t.Fatalf("Patch status: %v", err)
	}
	if got := managers(pod)["reporter/Update/status"]; got != `{"f:status":{"f:message":{}}}` {
		t.Errorf("reporter's status fields after patch = %s (all: %v)", got, managers(pod))
	}
	if _, ok := managers(pod)["maker/Update"]; !ok {
		t.Errorf("managedFields after the status patch = %v, lost maker's", managers(pod))
	}
	// Without a fieldManager the manager is the client's User-Agent.
	cm, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create configmap: %v", err)
	}
	if got := cm.ManagedFields; len(got) != 1 || got[0].Manager != "apiserver.test" {
		t.Errorf("managedFields of a create without fieldManager = %v, want one by apiserver.test", got)
	}
}

func TestApplyRefusesBadInput(t *testing.T) {
	ts := newTestServer(t)
	const path = "/api/v1/namespaces/default/configmaps/cfg"
	apply := string(types.ApplyYAMLPatchType)
	cases := []struct {
		name, query, ct, body string
		code                  int
		text                  string // the message or a cause's field names it
	}{
		{"no fieldManager", "", apply, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}", 422, "fieldManager"},
		{"force on a merge patch", "?force=true", string(types.MergePatchType), `{}`, 422, "force"},
		{"managedFields set", "?fieldManager=m", apply,
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, managedFields: [{manager: x, operation: Apply}]}", 400, "metadata.managedFields"},
		{"another kind", "?fieldManager=m", apply, "apiVersion: v1\nkind: Secret\nmetadata: {name: cfg}", 400, "Secret"},
		{"another name", "?fieldManager=m", apply, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}", 400, "other"},
		{"an unknown field", "?fieldManager=m", apply, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\nspec: {}", 400, ".spec"},
		{"not YAML", "?fieldManager=m", apply, "{{", 400, "YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, st := rawRequest(t, ts, "PATCH", path+tc.query, tc.ct, []byte(tc.body))
			named := strings.Contains(st.Message, tc.text)
			if st.Details != nil {
				for _, c := range st.Details.Causes {
					named = named || c.Field == tc.text
				}
			}
			if code != tc.code || !named {
				t.Errorf("PATCH = %d %q, want %d naming %q", code, st.Message, tc.code, tc.text)
			}
		})
	}
	if _, err := ts.client.CoreV1().ConfigMaps("default").Get(testContext(t), "cfg", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get after refused applies = %v, want NotFound", err)
	}
}

// BenchmarkTrackCreatePod measures what recording managedFields adds to
// the create of a pod: the field manager's Update against an empty pod.
func BenchmarkTrackCreatePod(b *testing.B) {
	res := podsResource
	var f fieldManagers
	fm, err := f.get(res, updateMain)
	if err != nil {
		b.Fatal(err)
	}
	pod := testPod("web", map[string]string{"app": "web"})
	setTypeMeta(pod, res)
	b.ReportAllocs()
	for b.Loop() {
		obj := storedTimes(fm.UpdateNoErrors(newLive(res), pod.DeepCopy(), "bench"))
		if len(obj.(*corev1.Pod).ManagedFields) != 1 {
			b.Fatal("no managedFields recorded")
		}
	}
}
