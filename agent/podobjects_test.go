package agent

import (
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/envelope"
)

// orderRecorder records, in order, the pods and objects handed over.
type orderRecorder struct {
	calls []string
	last  pods.Objects
}

func (r *orderRecorder) SetPods(p []*corev1.Pod) { r.calls = append(r.calls, "pods") }

func (r *orderRecorder) SetObjects(o pods.Objects) {
	r.calls = append(r.calls, "objects")
	r.last = o
}

// names lists the objects of the last SetObjects as "kind ns/name=value".
func (r *orderRecorder) names() []string {
	var out []string
	for k, cm := range r.last.ConfigMaps {
		out = append(out, "cm "+k.String()+"="+cm.Data["k"])
	}
	for k, s := range r.last.Secrets {
		out = append(out, "secret "+k.String()+"="+string(s.Data["k"]))
	}
	for _, s := range r.last.Services {
		out = append(out, "svc "+s.Namespace+"/"+s.Name)
	}
	for name, b := range r.last.ClusterTrustBundles {
		out = append(out, "ctb "+name+"="+b.Spec.SignerName)
	}
	return out
}

func TestApplyPodObjects(t *testing.T) {
	cmJSON, _ := json.Marshal(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"k": "v1"}})
	cm2, err := envelope.Encode(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"k": "v2"}}, "v1", "ConfigMap")
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := json.Marshal(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Data: map[string][]byte{"k": []byte("s")}})
	svc, _ := json.Marshal(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}})
	ctb, err := envelope.Encode(&certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "ex.com:s:1"},
		Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "ex.com/s"}}, "certificates.k8s.io/v1", "ClusterTrustBundle")
	if err != nil {
		t.Fatal(err)
	}
	pod := []byte(`{"metadata":{"name":"p","namespace":"ns"}}`)
	change := func(a api.Change_Action, k api.ObjectKind, name string, obj []byte) *api.Change {
		return &api.Change{Action: a, Kind: k, Namespace: "ns", Name: name, Object: obj}
	}
	rec := &orderRecorder{}
	a := &agent{lg: slog.New(slog.DiscardHandler), pods: rec, objs: rec}
	st := &state{objects: map[objKey][]byte{}}
	steps := []struct {
		msg   *api.SessionMessage
		calls []string
		objs  []string
	}{
		{&api.SessionMessage{Type: api.SessionMessage_COMPLETE, Revision: 5, Changes: []*api.Change{
			change(api.Change_PUT, api.ObjectKind_OBJECT_KIND_POD, "p", pod),
			change(api.Change_PUT, api.ObjectKind_OBJECT_KIND_CONFIGMAP, "cfg", cmJSON),
			change(api.Change_PUT, api.ObjectKind_OBJECT_KIND_SERVICE, "web", svc),
		}}, []string{"objects", "pods"}, []string{"cm ns/cfg=v1", "svc ns/web"}},
		{&api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: 5, Revision: 6, Changes: []*api.Change{
			change(api.Change_PUT, api.ObjectKind_OBJECT_KIND_CONFIGMAP, "cfg", cm2),
			change(api.Change_PUT, api.ObjectKind_OBJECT_KIND_SECRET, "creds", secret),
		}}, []string{"objects"}, []string{"cm ns/cfg=v2", "secret ns/creds=s", "svc ns/web"}},
		{&api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: 6, Revision: 7, Changes: []*api.Change{
			change(api.Change_DELETE, api.ObjectKind_OBJECT_KIND_SECRET, "creds", nil),
			change(api.Change_PUT, api.ObjectKind_OBJECT_KIND_POD, "p", pod),
		}}, []string{"objects", "pods"}, []string{"cm ns/cfg=v2", "svc ns/web"}},
		{&api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: 7, Revision: 8, Changes: []*api.Change{
			change(api.Change_PUT, api.ObjectKind_OBJECT_KIND_POD, "p", pod),
		}}, []string{"pods"}, []string{"cm ns/cfg=v2", "svc ns/web"}},
		{&api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: 8, Revision: 9, Changes: []*api.Change{
			{Action: api.Change_PUT, Kind: api.ObjectKind_OBJECT_KIND_CLUSTERTRUSTBUNDLE, Name: "ex.com:s:1", Object: ctb},
		}}, []string{"objects"}, []string{"cm ns/cfg=v2", "ctb ex.com:s:1=ex.com/s", "svc ns/web"}},
		{&api.SessionMessage{Type: api.SessionMessage_COMPLETE, Revision: 10}, []string{"objects", "pods"}, nil},
	}
	for i, s := range steps {
		rec.calls = nil
		if err := a.apply(st, s.msg); err != nil {
			t.Fatalf("step %d: apply = %v", i, err)
		}
		if d := cmp.Diff(s.calls, rec.calls); d != "" {
			t.Errorf("step %d: calls (-want +got):\n%s", i, d)
		}
		got := rec.names()
		slices.Sort(got)
		if d := cmp.Diff(s.objs, got); d != "" {
			t.Errorf("step %d: objects (-want +got):\n%s", i, d)
		}
	}
}
