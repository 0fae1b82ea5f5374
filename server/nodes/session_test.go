package nodes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik-dev/minik/api"
)

// recvT receives one session message or fails after testTimeout.
func recvT(t *testing.T, s api.Node_SessionClient) *api.SessionMessage {
	t.Helper()
	type res struct {
		m   *api.SessionMessage
		err error
	}
	ch := make(chan res, 1)
	go func() { m, err := s.Recv(); ch <- res{m, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Recv() = %v", r.err)
		}
		return r.m
	case <-time.After(testTimeout):
		t.Fatal("no session message")
	}
	return nil
}

func session(t *testing.T, c api.NodeClient, last int64) api.Node_SessionClient {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxT(t))
	t.Cleanup(cancel)
	s, err := c.Session(ctx, &api.SessionRequest{LastRevision: last})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// summary is "ACTION KIND ns/name" for each change of a kind in kinds.
func summary(m *api.SessionMessage, kinds ...api.ObjectKind) []string {
	var out []string
	for _, c := range m.Changes {
		if slices.Contains(kinds, c.Kind) {
			out = append(out, fmt.Sprintf("%s %s %s/%s", c.Action, c.Kind, c.Namespace, c.Name))
		}
	}
	return out
}

func TestSessionCompleteThenIncremental(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	e.createPod("mine", "n1")
	e.createPod("theirs", "n2")
	e.createPod("unbound", "")
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt(8080)}}},
	}
	if _, err := e.admin.Services("default").Create(ctxT(t), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	s := session(t, c, 0)
	first := recvT(t, s)
	if first.Type != api.SessionMessage_COMPLETE || first.PrevRevision != 0 {
		t.Fatalf("first message: type %v prev %d, want COMPLETE prev 0", first.Type, first.PrevRevision)
	}
	want := []string{"PUT OBJECT_KIND_POD default/mine", "PUT OBJECT_KIND_SERVICE default/web"}
	got := summary(first, api.ObjectKind_OBJECT_KIND_POD, api.ObjectKind_OBJECT_KIND_SERVICE)
	if diff := cmp.Diff(want, slices.DeleteFunc(got, func(s string) bool { return s == "PUT OBJECT_KIND_SERVICE default/kubernetes" })); diff != "" {
		t.Errorf("complete set (-want +got):\n%s", diff)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(first.Changes[0].Object, &pod); err != nil || pod.Spec.NodeName != "n1" || pod.ResourceVersion == "" {
		t.Errorf("complete set pod = %+v, %v; want nodeName n1 and a resourceVersion", pod.ObjectMeta, err)
	}

	// A burst: create, update and delete, plus changes of other nodes.
	e.createPod("second", "n1")
	e.createPod("other", "n2")
	cur, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels["v"] = "2"
	if _, err := e.admin.Pods("default").Update(ctxT(t), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	if err := e.admin.Pods("default").Delete(ctxT(t), "second", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	end, err := e.st.CurrentRevision(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	wantChanges := []string{
		"PUT OBJECT_KIND_POD default/second",
		"PUT OBJECT_KIND_POD default/mine",
		"DELETE OBJECT_KIND_POD default/second",
	}
	var changes []string
	last := first.Revision
	for last < end {
		m := recvT(t, s)
		if m.Type != api.SessionMessage_INCREMENTAL {
			t.Fatalf("message type %v, want INCREMENTAL", m.Type)
		}
		if m.PrevRevision != last || m.Revision <= last {
			t.Fatalf("message prev %d rev %d after revision %d: not chained", m.PrevRevision, m.Revision, last)
		}
		last = m.Revision
		changes = append(changes, summary(m, api.ObjectKind_OBJECT_KIND_POD)...)
	}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("incremental changes (-want +got):\n%s", diff)
	}

	// Resuming from a revision continues after it, without a complete set.
	mid := first.Revision
	s2 := session(t, c, mid)
	m := recvT(t, s2)
	if m.Type != api.SessionMessage_INCREMENTAL || m.PrevRevision != mid {
		t.Fatalf("resumed session: first message %v prev %d, want INCREMENTAL prev %d", m.Type, m.PrevRevision, mid)
	}
	if got := summary(m, api.ObjectKind_OBJECT_KIND_POD); len(got) == 0 || got[0] != wantChanges[0] {
		t.Errorf("resumed session starts with %q, want %q first", got, wantChanges[0])
	}
}

func TestSessionCompactedRevision(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	e.createPod("a", "n1")
	old, err := e.st.CurrentRevision(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	e.createPod("b", "n1")
	now, err := e.st.CurrentRevision(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Compact(ctxT(t), now); err != nil {
		t.Fatal(err)
	}
	m := recvT(t, session(t, c, old-1))
	if m.Type != api.SessionMessage_COMPLETE || m.Revision < now {
		t.Fatalf("session from compacted revision: %v at %d, want COMPLETE at %d or later", m.Type, m.Revision, now)
	}
	want := []string{"PUT OBJECT_KIND_POD default/a", "PUT OBJECT_KIND_POD default/b"}
	if diff := cmp.Diff(want, summary(m, api.ObjectKind_OBJECT_KIND_POD)); diff != "" {
		t.Errorf("complete set (-want +got):\n%s", diff)
	}
}

// A status the node writes itself is not sent back to it; one written by
// anyone else is.
func TestSessionSkipsNodesOwnStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	mine := e.createPod("mine", "n1")
	s := session(t, c, 0)
	last := recvT(t, s).Revision

	resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Pods: []*api.PodStatus{podStatus(t, mine, corev1.PodRunning)}})
	if err != nil || codes.Code(resp.Pods[0].Code) != codes.OK {
		t.Fatalf("UpdateStatus = %v, %v", resp, err)
	}
	cur, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Status.Conditions = append(cur.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "NodeUnreachable"})
	if _, err := e.admin.Pods("default").UpdateStatus(ctxT(t), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	m := recvT(t, s)
	if m.PrevRevision != last {
		t.Fatalf("message prev %d, want %d", m.PrevRevision, last)
	}
	if len(m.Changes) != 1 {
		t.Fatalf("changes after the node's own status and the admin's = %q, want only the admin's", summary(m, api.ObjectKind_OBJECT_KIND_POD))
	}
	var pod corev1.Pod
	if err := json.Unmarshal(m.Changes[0].Object, &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Status.Conditions) == 0 || pod.Status.Conditions[len(pod.Status.Conditions)-1].Reason != "NodeUnreachable" {
		t.Errorf("change sent = status %+v, want the admin's condition", pod.Status)
	}
}

// A node that reports the status already stored writes nothing, so a
// change someone else made just before is not taken for its own.
func TestSessionSendsChangeBeforeUnchangedStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	mine := e.createPod("mine", "n1")
	s := session(t, c, 0)
	recvT(t, s)
	report := &api.StatusUpdate{Pods: []*api.PodStatus{podStatus(t, mine, corev1.PodRunning)}}
	if resp, err := c.UpdateStatus(ctxT(t), report); err != nil || codes.Code(resp.Pods[0].Code) != codes.OK {
		t.Fatalf("UpdateStatus = %v, %v", resp, err)
	}
	cur, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels["by"] = "admin"
	if _, err := e.admin.Pods("default").Update(ctxT(t), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.UpdateStatus(ctxT(t), report); err != nil || codes.Code(resp.Pods[0].Code) != codes.OK {
		t.Fatalf("UpdateStatus again = %v, %v", resp, err)
	}
	for {
		m := recvT(t, s)
		for _, ch := range m.Changes {
			var pod corev1.Pod
			if err := json.Unmarshal(ch.Object, &pod); err != nil {
				t.Fatal(err)
			}
			if pod.Labels["by"] == "admin" {
				return
			}
		}
	}
}

// An agent that asks for protobuf gets every object in the protobuf
// envelope, in the complete set and in later batches; one that does not
// (above) gets JSON.
func TestSessionObjectsInProtobuf(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	e.createPod("mine", "n1")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	s, err := c.Session(ctx, &api.SessionRequest{AcceptProtobuf: true})
	if err != nil {
		t.Fatal(err)
	}
	check := func(m *api.SessionMessage) {
		t.Helper()
		for _, ch := range m.Changes {
			if !bytes.HasPrefix(ch.Object, []byte("k8s\x00")) {
				t.Errorf("%v %s/%s object = %.40q…, want the protobuf envelope", ch.Kind, ch.Namespace, ch.Name, ch.Object)
			}
		}
	}
	first := recvT(t, s)
	check(first)
	var pod corev1.Pod
	if got := summary(first, api.ObjectKind_OBJECT_KIND_POD); !slices.Equal(got, []string{"PUT OBJECT_KIND_POD default/mine"}) {
		t.Fatalf("complete set pods = %v", got)
	}
	if err := api.DecodeObject(first.Changes[0].Object, &pod); err != nil || pod.Spec.NodeName != "n1" || pod.ResourceVersion == "" || pod.Kind != "Pod" {
		t.Errorf("complete set pod = %+v, %v; want kind Pod, nodeName n1 and a resourceVersion", pod, err)
	}
	e.createPod("second", "n1")
	for {
		m := recvT(t, s)
		check(m)
		if got := summary(m, api.ObjectKind_OBJECT_KIND_POD); len(got) > 0 {
			if !slices.Equal(got, []string{"PUT OBJECT_KIND_POD default/second"}) {
				t.Errorf("batch pods = %v", got)
			}
			break
		}
	}
}
