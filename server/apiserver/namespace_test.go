package apiserver

import (
	"errors"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// waitUntil polls cond until it holds, failing t if it does not within
// 20 s (a bound on a hang, not a measure of speed).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func makeNamespace(t *testing.T, ts *testServer, name string) {
	t.Helper()
	_, err := ts.client.CoreV1().Namespaces().Create(testContext(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create namespace %s: %v", name, err)
	}
}

// boundPod is a pod on a node, which a delete only marks: the namespace
// stays Terminating until the node confirms (a delete with grace 0).
func boundPod(name string) *corev1.Pod {
	p := testPod(name, nil)
	p.Spec.NodeName = "n1"
	return p
}

func TestNamespaceTerminatingRefusesCreates(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	makeNamespace(t, ts, "team")
	if _, err := ts.client.CoreV1().Pods("team").Create(ctx, boundPod("running"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ts.client.CoreV1().Namespaces().Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete namespace: %v", err)
	}
	ns, err := ts.client.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get terminating namespace: %v", err)
	}
	if ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil ||
		len(ns.Spec.Finalizers) != 1 || ns.Spec.Finalizers[0] != corev1.FinalizerKubernetes {
		t.Errorf("namespace = phase %q deletionTimestamp %v finalizers %v, want Terminating, set, [kubernetes]",
			ns.Status.Phase, ns.DeletionTimestamp, ns.Spec.Finalizers)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"named", `{"metadata":{"name":"web"}}`, `services "web" is forbidden: unable to create new content in namespace team because it is being terminated`},
		{"generated", `{"metadata":{"generateName":"web-"}}`, `services "web-" is forbidden: unable to create new content in namespace team because it is being terminated`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"apiVersion":"v1","kind":"Service",` + tc.body[1:len(tc.body)-1] + `,"spec":{"ports":[{"port":80}]}}`
			code, st := rawRequest(t, ts, "POST", "/api/v1/namespaces/team/services", "application/json", []byte(body))
			if code != http.StatusForbidden || st.Reason != metav1.StatusReasonForbidden || st.Message != tc.want {
				t.Errorf("create = %d %s %q, want 403 Forbidden %q", code, st.Reason, st.Message, tc.want)
			}
			if st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Type != corev1.NamespaceTerminatingCause ||
				st.Details.Causes[0].Field != "metadata.namespace" || st.Details.Causes[0].Message != "namespace team is being terminated" {
				t.Errorf("details = %+v, want one NamespaceTerminating cause on metadata.namespace", st.Details)
			}
		})
	}
	code, st := rawRequest(t, ts, "POST", "/api/v1/namespaces/nowhere/services", "application/json",
		[]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"port":80}]}}`))
	if code != http.StatusNotFound || st.Reason != metav1.StatusReasonNotFound || st.Message != `namespaces "nowhere" not found` {
		t.Errorf("create in a missing namespace = %d %s %q, want 404 NotFound", code, st.Reason, st.Message)
	}
}

// condition returns ns's condition of type typ, or the zero condition.
func condition(ns *corev1.Namespace, typ corev1.NamespaceConditionType) corev1.NamespaceCondition {
	for _, c := range ns.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.NamespaceCondition{}
}

// fillNamespace creates objects of several kinds in ns: an unbound pod, a
// pod on a node, a service held by a finalizer, endpoints, a replication
// controller, an event and a PodDisruptionBudget.
func fillNamespace(t *testing.T, ts *testServer, ns string) {
	t.Helper()
	ctx := testContext(t)
	core := ts.client.CoreV1()
	one := int32(1)
	steps := []error{
		ignore(core.Pods(ns).Create(ctx, testPod("pending", nil), metav1.CreateOptions{})),
		ignore(core.Pods(ns).Create(ctx, boundPod("running"), metav1.CreateOptions{})),
		ignore(core.Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})),
		ignore(core.Endpoints(ns).Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "ep"}}, metav1.CreateOptions{})),
		ignore(core.ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{
			ObjectMeta: metav1.ObjectMeta{Name: "rc"},
			Spec: corev1.ReplicationControllerSpec{Replicas: &one, Selector: map[string]string{"app": "x"},
				Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: testPod("", nil).Spec}},
		}, metav1.CreateOptions{})),
		ignore(core.Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "ev"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "pending", Namespace: ns},
			Reason:         "Test", Message: "m", Type: corev1.EventTypeNormal,
		}, metav1.CreateOptions{})),
		ignore(ts.client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "pdb"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptrTo(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{}},
		}, metav1.CreateOptions{})),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatalf("filling namespace: %v", err)
	}
}

func ignore[T any](_ T, err error) error { return err }

func ptrTo[T any](v T) *T { return &v }

// Deleting a namespace deletes every kind in it, gives the running pod its
// grace period, reports what is left in the conditions Kubernetes uses and
// removes the namespace once the pod is confirmed gone and the last
// finalizer is removed.
func TestNamespaceDeletionLifecycle(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	makeNamespace(t, ts, "team")
	fillNamespace(t, ts, "team")
	nss := ts.client.CoreV1().Namespaces()
	if err := nss.Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete namespace: %v", err)
	}
	// Pods go first: while the running one stops, the rest stays.
	var ns *corev1.Namespace
	waitUntil(t, "conditions naming the running pod", func() bool {
		var err error
		ns, err = nss.Get(ctx, "team", metav1.GetOptions{})
		return err == nil && condition(ns, corev1.NamespaceContentRemaining).Message == "Some resources are remaining: pods. has 1 resource instances"
	})
	pod, err := ts.client.CoreV1().Pods("team").Get(ctx, "running", metav1.GetOptions{})
	if err != nil || pod.DeletionGracePeriodSeconds == nil || *pod.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("running pod = %v (err %v), want marked with its 30 s grace period", pod.DeletionGracePeriodSeconds, err)
	}
	if _, err := ts.client.CoreV1().Pods("team").Get(ctx, "pending", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pending pod: %v, want it deleted", err)
	}
	if _, err := ts.client.CoreV1().ReplicationControllers("team").Get(ctx, "rc", metav1.GetOptions{}); err != nil {
		t.Errorf("rc while a pod is still stopping: %v, want it kept", err)
	}
	// The node confirms the pod stopped: the rest goes, but for the
	// service a finalizer holds.
	zero := int64(0)
	if err := ts.client.CoreV1().Pods("team").Delete(ctx, "running", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	wantRemaining := "Some resources are remaining: services. has 1 resource instances"
	wantFinalizers := "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
	waitUntil(t, "conditions naming the held service", func() bool {
		ns, err = nss.Get(ctx, "team", metav1.GetOptions{})
		return err == nil && condition(ns, corev1.NamespaceContentRemaining).Message == wantRemaining &&
			condition(ns, corev1.NamespaceFinalizersRemaining).Message == wantFinalizers
	})
	want := map[corev1.NamespaceConditionType][2]string{
		corev1.NamespaceDeletionDiscoveryFailure: {"False", "ResourcesDiscovered"},
		corev1.NamespaceDeletionGVParsingFailure: {"False", "ParsedGroupVersions"},
		corev1.NamespaceDeletionContentFailure:   {"False", "ContentDeleted"},
		corev1.NamespaceContentRemaining:         {"True", "SomeResourcesRemain"},
		corev1.NamespaceFinalizersRemaining:      {"True", "SomeFinalizersRemain"},
	}
	for typ, w := range want {
		if c := condition(ns, typ); string(c.Status) != w[0] || c.Reason != w[1] {
			t.Errorf("condition %s = %s %s, want %s %s", typ, c.Status, c.Reason, w[0], w[1])
		}
	}
	for _, gone := range []error{
		ignore(ts.client.CoreV1().Endpoints("team").Get(ctx, "ep", metav1.GetOptions{})),
		ignore(ts.client.CoreV1().ReplicationControllers("team").Get(ctx, "rc", metav1.GetOptions{})),
		ignore(ts.client.CoreV1().Events("team").Get(ctx, "ev", metav1.GetOptions{})),
		ignore(ts.client.PolicyV1().PodDisruptionBudgets("team").Get(ctx, "pdb", metav1.GetOptions{})),
	} {
		if !apierrors.IsNotFound(gone) {
			t.Errorf("object left in the terminating namespace: %v", gone)
		}
	}
	// The finalizer's owner lets go.
	if _, err := ts.client.CoreV1().Services("team").Patch(ctx, "held", "application/merge-patch+json",
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the namespace to go", func() bool {
		_, err := nss.Get(ctx, "team", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// A namespace another finalizer holds stays Terminating once its content
// is gone, and goes when that finalizer is removed through finalize.
func TestNamespaceWaitsForSpecFinalizers(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	nss := ts.client.CoreV1().Namespaces()
	_, err := nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/wait"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.CoreV1().Pods("team").Create(ctx, testPod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nss.Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var ns *corev1.Namespace
	waitUntil(t, "the kubernetes finalizer to be removed", func() bool {
		ns, err = nss.Get(ctx, "team", metav1.GetOptions{})
		return err == nil && len(ns.Spec.Finalizers) == 1
	})
	if ns.Spec.Finalizers[0] != "example.com/wait" || condition(ns, corev1.NamespaceContentRemaining).Reason != "ContentRemoved" {
		t.Errorf("namespace = finalizers %v, content condition %+v, want [example.com/wait] and ContentRemoved",
			ns.Spec.Finalizers, condition(ns, corev1.NamespaceContentRemaining))
	}
	ns.Spec.Finalizers = nil
	if _, err := nss.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if _, err := nss.Get(ctx, "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get after the last finalizer = %v, want NotFound", err)
	}
}
