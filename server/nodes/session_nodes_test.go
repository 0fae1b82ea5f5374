package nodes_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
)

func TestSessionNodes(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	nodes := e.admin.Nodes()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n2"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.7.0/24"},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.7"}}},
	}
	if _, err := nodes.Create(ctxT(t), n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := session(t, c, 0)
	first := recvT(t, s)
	got := summary(first, api.ObjectKind_OBJECT_KIND_NODE)
	if !cmp.Equal(got, []string{"PUT OBJECT_KIND_NODE /n2"}) && !cmp.Equal(got, []string{"PUT OBJECT_KIND_NODE /n1", "PUT OBJECT_KIND_NODE /n2"}) {
		t.Fatalf("complete set nodes = %v, want n2 (and n1)", got)
	}
	for _, ch := range first.Changes {
		if ch.Kind != api.ObjectKind_OBJECT_KIND_NODE || ch.Name != "n2" {
			continue
		}
		var sent corev1.Node
		if err := json.Unmarshal(ch.Object, &sent); err != nil {
			t.Fatal(err)
		}
		if sent.Spec.PodCIDR != "10.42.7.0/24" || len(sent.Status.Addresses) != 1 || sent.ResourceVersion == "" {
			t.Errorf("sent node = %+v, want podCIDR, one address and a resourceVersion", sent)
		}
	}

	// A label change is not sent; an address change is.
	cur, err := nodes.Get(ctxT(t), "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels = map[string]string{"a": "b"}
	if cur, err = nodes.Update(ctxT(t), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cur.Status.Addresses[0].Address = "192.0.2.8"
	if _, err := nodes.UpdateStatus(ctxT(t), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nodes.Delete(ctxT(t), "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"PUT OBJECT_KIND_NODE /n2", "DELETE OBJECT_KIND_NODE /n2"}
	var changes []string
	for len(changes) < len(want) {
		m := recvT(t, s)
		for _, ch := range m.Changes {
			if ch.Kind != api.ObjectKind_OBJECT_KIND_NODE || ch.Name != "n2" {
				continue
			}
			changes = append(changes, ch.Action.String()+" OBJECT_KIND_NODE /n2")
			if ch.Action == api.Change_PUT && !json.Valid(ch.Object) {
				t.Errorf("node object not JSON: %s", ch.Object)
			}
		}
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("node changes (-want +got):\n%s", diff)
	}
}
