package apiserver

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runningPod creates a pod that is Running (ready or not), bound to node
// when node is set.
func (ts *testServer) runningPod(t *testing.T, name, node string, ready bool) *corev1.Pod {
	t.Helper()
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	p, err := pods.Create(ctx, testPod(name, map[string]string{"app": "web"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node != "" {
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
		if err := pods.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if p, err = pods.Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: status})
	if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// budget creates a PDB for app=web and gives it the status the disruption
// controller would.
func (ts *testServer) budget(t *testing.T, name string, healthy, desired, allowed int32, observed bool) *policyv1.PodDisruptionBudget {
	t.Helper()
	ctx := testContext(t)
	one := intstr.FromInt32(desired)
	pdbs := ts.client.PolicyV1().PodDisruptionBudgets("default")
	pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create PDB: %v", err)
	}
	if pdb.Generation != 1 || pdb.APIVersion != "policy/v1" && pdb.APIVersion != "" {
		t.Errorf("created PDB generation %d apiVersion %q", pdb.Generation, pdb.APIVersion)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{
		CurrentHealthy: healthy, DesiredHealthy: desired, DisruptionsAllowed: allowed, ExpectedPods: healthy,
	}
	if observed {
		pdb.Status.ObservedGeneration = pdb.Generation
	}
	if pdb, err = pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("PDB status: %v", err)
	}
	return pdb
}

func (ts *testServer) evict(ctx context.Context, name string, opts *metav1.DeleteOptions) error {
	return ts.client.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, DeleteOptions: opts,
	})
}

func (ts *testServer) podExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := ts.client.CoreV1().Pods("default").Get(testContext(t), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestEvictionWithoutBudget(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ts.runningPod(t, "a", "", true)
	if err := ts.evict(ctx, "a", nil); err != nil {
		t.Fatalf("Evict = %v", err)
	}
	if ts.podExists(t, "a") {
		t.Error("evicted unbound pod still exists")
	}
	if err := ts.evict(ctx, "missing", nil); !apierrors.IsNotFound(err) {
		t.Errorf("Evict(missing) = %v, want NotFound", err)
	}
}

// The grace period of the eviction's deleteOptions is the pod's.
func TestEvictionGracePeriod(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ts.runningPod(t, "a", "node-1", true)
	grace := int64(7)
	if err := ts.evict(ctx, "a", &metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatalf("Evict = %v", err)
	}
	p, err := ts.client.CoreV1().Pods("default").Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 7 {
		t.Errorf("evicted pod: deletionTimestamp %v grace %v, want set and 7", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
	}
}

// An evicted pod carries the DisruptionTarget condition, which a Job's
// pod failure policy matches.
func TestEvictionMarksDisruptionTarget(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ts.runningPod(t, "a", "node-1", true)
	if err := ts.evict(ctx, "a", nil); err != nil {
		t.Fatalf("Evict = %v", err)
	}
	p, err := ts.client.CoreV1().Pods("default").Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got *corev1.PodCondition
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			got = &p.Status.Conditions[i]
		}
	}
	if got == nil || got.Status != corev1.ConditionTrue || got.Reason != "EvictionByEvictionAPI" || p.DeletionTimestamp == nil {
		t.Errorf("evicted pod: conditions %+v, deletionTimestamp %v; want DisruptionTarget True EvictionByEvictionAPI, deleted",
			p.Status.Conditions, p.DeletionTimestamp)
	}
}

func TestEvictionBudget(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	ts.runningPod(t, "a", "", true)
	ts.runningPod(t, "b", "", true)
	ts.budget(t, "web", 2, 1, 1, true)

	if err := ts.evict(ctx, "a", nil); err != nil {
		t.Fatalf("first Evict = %v, want allowed", err)
	}
	pdb, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pdb.Status.DisruptionsAllowed != 0 || pdb.Status.DisruptedPods["a"].Time.IsZero() {
		t.Errorf("budget after an eviction: allowed %d disrupted %v; want 0 and pod a", pdb.Status.DisruptionsAllowed, pdb.Status.DisruptedPods)
	}
	err = ts.evict(ctx, "b", nil)
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("second Evict = %v, want 429 TooManyRequests", err)
	}
	st := err.(apierrors.APIStatus).Status()
	if st.Message != "Cannot evict pod as it would violate the pod's disruption budget." || st.Details == nil ||
		!slices.ContainsFunc(st.Details.Causes, func(c metav1.StatusCause) bool {
			return c.Type == policyv1.DisruptionBudgetCause && c.Message == "The disruption budget web needs 1 healthy pods and has 2 currently"
		}) {
		t.Errorf("429 status = %+v", st)
	}
	if !ts.podExists(t, "b") {
		t.Error("pod b deleted although its budget allowed no disruption")
	}
}

func TestEvictionBudgetEdges(t *testing.T) {
	t.Run("not yet observed", func(t *testing.T) {
		ts := newTestServer(t)
		ts.runningPod(t, "a", "", true)
		ts.budget(t, "web", 2, 1, 1, false)
		err := ts.evict(testContext(t), "a", nil)
		if !apierrors.IsTooManyRequests(err) || !strings.Contains(statusCauses(err), "still being processed") {
			t.Errorf("Evict = %v (%s), want 429 still being processed", err, statusCauses(err))
		}
	})
	t.Run("two budgets", func(t *testing.T) {
		ts := newTestServer(t)
		ts.runningPod(t, "a", "", true)
		ts.budget(t, "one", 2, 1, 1, true)
		ts.budget(t, "two", 2, 1, 1, true)
		if err := ts.evict(testContext(t), "a", nil); !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "more than one PodDisruptionBudget") {
			t.Errorf("Evict = %v, want 500 more than one PodDisruptionBudget", err)
		}
	})
	t.Run("unready pod while the budget is met", func(t *testing.T) {
		ts := newTestServer(t)
		ts.runningPod(t, "a", "", false)
		ts.budget(t, "web", 2, 2, 0, true)
		if err := ts.evict(testContext(t), "a", nil); err != nil {
			t.Errorf("Evict(unready) = %v, want allowed", err)
		}
	})
	t.Run("pending pod ignores the budget", func(t *testing.T) {
		ts := newTestServer(t)
		if _, err := ts.client.CoreV1().Pods("default").Create(testContext(t), testPod("a", map[string]string{"app": "web"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ts.budget(t, "web", 0, 1, 0, true)
		if err := ts.evict(testContext(t), "a", nil); err != nil {
			t.Errorf("Evict(pending) = %v, want allowed", err)
		}
	})
}

func statusCauses(err error) string {
	s, ok := err.(apierrors.APIStatus)
	if !ok || s.Status().Details == nil {
		return ""
	}
	var out []string
	for _, c := range s.Status().Details.Causes {
		out = append(out, c.Message)
	}
	return strings.Join(out, "; ")
}

// Bodies of policy/v1beta1 are taken; a name that differs from the URL's
// and another kind are refused with 400.
func TestEvictionBodies(t *testing.T) {
	ts := newTestServer(t)
	ts.runningPod(t, "a", "", true)
	post := func(body string) int {
		resp, err := http.Post(ts.url+"/api/v1/namespaces/default/pods/a/eviction", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"b"}}`, http.StatusBadRequest},
		{`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`, http.StatusBadRequest},
		{`{"apiVersion":"policy/v1beta1","kind":"Eviction","metadata":{"name":"a"},"deleteOptions":{"gracePeriodSeconds":0}}`, http.StatusCreated},
	} {
		if got := post(tc.body); got != tc.want {
			t.Errorf("POST eviction %s = %d, want %d", tc.body, got, tc.want)
		}
	}
	if ts.podExists(t, "a") {
		t.Error("pod a not evicted by a v1beta1 Eviction")
	}
}

// Discovery lists pods/eviction as kubectl drain looks for it, and the
// policy group with poddisruptionbudgets.
func TestEvictionDiscovery(t *testing.T) {
	ts := newTestServer(t)
	core, err := ts.client.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(core.APIResources, func(r metav1.APIResource) bool { return r.Name == "pods/eviction" })
	if i < 0 {
		t.Fatal("no pods/eviction in /api/v1")
	}
	if r := core.APIResources[i]; r.Group != "policy" || r.Version != "v1" || r.Kind != "Eviction" || !slices.Contains(r.Verbs, "create") {
		t.Errorf("pods/eviction = %+v", r)
	}
	if slices.ContainsFunc(core.APIResources, func(r metav1.APIResource) bool { return r.Name == "poddisruptionbudgets" }) {
		t.Error("poddisruptionbudgets listed in core v1")
	}
	groups, err := ts.client.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool {
		return g.Name == "policy" && g.PreferredVersion.GroupVersion == "policy/v1"
	}) {
		t.Errorf("groups = %+v, want policy with policy/v1", groups.Groups)
	}
	policy, err := ts.client.Discovery().ServerResourcesForGroupVersion("policy/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range policy.APIResources {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"poddisruptionbudgets", "poddisruptionbudgets/status"}) {
		t.Errorf("policy/v1 resources = %v", names)
	}
	// A grouped resource is not served under another group-version.
	resp, err := http.Get(ts.url + "/api/v1/namespaces/default/poddisruptionbudgets")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /api/v1/.../poddisruptionbudgets = %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get(ts.url + "/apis/policy/v1/namespaces/default/pods")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /apis/policy/v1/.../pods = %d, want 404", resp.StatusCode)
	}
}

func TestPDBCRUD(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pdbs := ts.client.PolicyV1().PodDisruptionBudgets("default")
	ts.budget(t, "web", 0, 1, 0, true)
	list, err := pdbs.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "web" {
		t.Fatalf("List = %v, %v", list, err)
	}
	pdb := list.Items[0].DeepCopy()
	half := intstr.FromString("50%")
	pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable = nil, &half
	upd, err := pdbs.Update(ctx, pdb, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("Update = %v", err)
	}
	if upd.Generation != 2 || upd.Status.ObservedGeneration != 1 {
		t.Errorf("after a spec update: generation %d observedGeneration %d, want 2 and 1", upd.Generation, upd.Status.ObservedGeneration)
	}
	bad := upd.DeepCopy()
	bad.Spec.MinAvailable = &half
	_, err = pdbs.Update(ctx, bad, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "minAvailable and maxUnavailable cannot be both set") {
		t.Errorf("Update with both = %v, want 422 naming the rule", err)
	}
	if err := pdbs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if _, err := pdbs.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get after Delete = %v, want NotFound", err)
	}
}

// kubectl validates a manifest against the OpenAPI document of its
// group-version: policy/v1 has one, naming PodDisruptionBudget.
func TestOpenAPIPerGroupVersion(t *testing.T) {
	ts := newTestServer(t)
	get := func(path string) string {
		resp, err := http.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		return buf.String()
	}
	index := get("/openapi/v3")
	for _, key := range []string{`"api/v1"`, `"apis/policy/v1"`} {
		if !strings.Contains(index, key) {
			t.Errorf("/openapi/v3 lacks %s: %s", key, index)
		}
	}
	policy := get("/openapi/v3/apis/policy/v1")
	if !strings.Contains(policy, `"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}"`) ||
		!strings.Contains(policy, `"group":"policy"`) || strings.Contains(policy, `"kind":"Pod"`) {
		t.Errorf("policy/v1 document: %s", policy)
	}
	if core := get("/openapi/v3/api/v1"); strings.Contains(core, "PodDisruptionBudget") || !strings.Contains(core, `"kind":"Pod"`) {
		t.Errorf("core document: %s", core)
	}
}
