package apiserver

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/server/auth"
)

// BindPod answers every case as a POST of pods/NAME/binding does, and a
// pod it binds ends up as the POST leaves one.
func TestBindPodAsREST(t *testing.T) {
	ts := newTestServer(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ts.cfg.Now = func() time.Time { return now }
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	tests := []struct {
		name    string
		prepare func(t *testing.T, pod string) // makes pod as the case needs it
		uid     func(p *corev1.Pod) types.UID  // the binding's UID
		target  string
		want    func(error) bool // nil: success
	}{
		{name: "unbound", target: "n1"},
		{name: "unbound, with its uid", uid: func(p *corev1.Pod) types.UID { return p.UID }, target: "n1"},
		{name: "another uid", uid: func(*corev1.Pod) types.UID { return "another-uid" }, target: "n1", want: apierrors.IsConflict},
		{name: "already bound", target: "n1", want: apierrors.IsConflict,
			prepare: func(t *testing.T, pod string) { ts.boundPod(t, pod, "n2") }},
		{name: "being deleted", target: "n1", want: apierrors.IsConflict,
			prepare: func(t *testing.T, pod string) {
				p := testPod(pod, nil)
				p.Finalizers = []string{"example.com/keep"}
				if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := pods.Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "missing", target: "n1", want: apierrors.IsNotFound, prepare: func(*testing.T, string) {}},
		{name: "no target", target: "", want: apierrors.IsInvalid},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			results := map[string]error{}
			for _, via := range []string{"rest", "inproc"} {
				name := via + "-" + strings.Repeat("x", i+1)
				if tc.prepare != nil {
					tc.prepare(t, name)
				} else {
					ts.boundPod(t, name, "")
				}
				b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: tc.target}}
				if tc.uid != nil {
					if p, err := pods.Get(ctx, name, metav1.GetOptions{}); err == nil {
						b.UID = tc.uid(p)
					}
				}
				if via == "rest" {
					results[via] = pods.Bind(ctx, b, metav1.CreateOptions{})
				} else {
					results[via] = ts.BindPod(ctx, auth.AdminUser, b)
				}
			}
			rest, inproc := results["rest"], results["inproc"]
			if tc.want != nil {
				var se *apierrors.StatusError
				if !tc.want(inproc) || !errors.As(inproc, &se) {
					t.Fatalf("BindPod = %v (%T), want a StatusError like %s", inproc, inproc, tc.name)
				}
				var restSE *apierrors.StatusError
				if !tc.want(rest) || !errors.As(rest, &restSE) {
					t.Fatalf("the POST = %v, want an answer like %s", rest, tc.name)
				}
				// The pods' names differ, and so may the messages that
				// name them.
				got, want := se.Status(), restSE.Status()
				if got.Code != want.Code || got.Reason != want.Reason ||
					strings.ReplaceAll(got.Message, "inproc-", "rest-") != want.Message {
					t.Errorf("BindPod = %d %s %q, the POST = %d %s %q: want the same answer",
						got.Code, got.Reason, got.Message, want.Code, want.Reason, want.Message)
				}
				return
			}
			if rest != nil || inproc != nil {
				t.Fatalf("the POST = %v, BindPod = %v; want both to bind", rest, inproc)
			}
			var bound [2]*corev1.Pod
			for j, via := range []string{"rest", "inproc"} {
				p, err := pods.Get(ctx, via+"-"+strings.Repeat("x", i+1), metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				bound[j] = p
			}
			if bound[1].Spec.NodeName != tc.target {
				t.Errorf("pod bound in process has nodeName %q, want %q", bound[1].Spec.NodeName, tc.target)
			}
			if !reflect.DeepEqual(bound[0].Spec, bound[1].Spec) || !reflect.DeepEqual(bound[0].Status, bound[1].Status) {
				t.Errorf("bound in process:\n%+v\n%+v\nby the POST:\n%+v\n%+v", bound[1].Spec, bound[1].Status, bound[0].Spec, bound[0].Status)
			}
		})
	}
}

// Only users allowed to create pods/binding may bind in process, and
// in-process bindings count in the request metrics as creates of pods
// with the code the POST answers.
func TestBindPodAuthorizationAndMetrics(t *testing.T) {
	ts := newTestServer(t)
	withNodeAuthorizer(ts)
	ts.metrics = NewMetrics()
	ctx := testContext(t)
	ts.boundPod(t, "p", "")
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := ts.BindPod(ctx, nodeUser("n1"), b); !apierrors.IsForbidden(err) {
		t.Fatalf("BindPod by a node = %v, want Forbidden", err)
	}
	if err := ts.BindPod(ctx, auth.AdminUser, b); err != nil {
		t.Fatalf("BindPod by the admin = %v", err)
	}
	ts.checkMetrics(t,
		// The pod's own creation and the binding.
		`apiserver_request_total{code="201",resource="pods",verb="create"} 2`,
		`apiserver_request_total{code="403",resource="pods",verb="create"} 1`,
	)
}
