package apiserver

import (
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// makeQuota creates quota name in ns and waits until the quota controller
// has counted it.
func makeQuota(t *testing.T, ts *testServer, ns, name string, spec corev1.ResourceQuotaSpec) {
	t.Helper()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if _, err := ts.client.CoreV1().ResourceQuotas(ns).Create(testContext(t), q, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create quota: %v", err)
	}
	waitUntil(t, "the quota to be counted", func() bool {
		got, err := ts.client.CoreV1().ResourceQuotas(ns).Get(testContext(t), name, metav1.GetOptions{})
		return err == nil && len(got.Status.Used) == len(spec.Hard)
	})
}

// waitUsed waits until quota ns/name reports used as its status.used.
func waitUsed(t *testing.T, ts *testServer, ns, name string, used corev1.ResourceList) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("status.used %v", used), func() bool {
		got, err := ts.client.CoreV1().ResourceQuotas(ns).Get(testContext(t), name, metav1.GetOptions{})
		return err == nil && apiequality.Semantic.DeepEqual(got.Status.Used, used) && apiequality.Semantic.DeepEqual(got.Status.Hard, got.Spec.Hard)
	})
}

func TestQuotaAdmissionAndStatus(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	makeNamespace(t, ts, "q")
	makeQuota(t, ts, "q", "quota", corev1.ResourceQuotaSpec{Hard: rlist(
		"pods", "2", "services", "2", "services.nodeports", "1", "requests.cpu", "1", "limits.memory", "1Gi",
		"resourcequotas", "1", "count/poddisruptionbudgets.policy", "1", "configmaps", "3")})
	pods := ts.client.CoreV1().Pods("q")
	for _, name := range []string{"p1", "p2"} {
		if _, err := pods.Create(ctx, podWith(name, rlist("cpu", "250m"), rlist("memory", "256Mi")), metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create %s: %v", name, err)
		}
	}
	used := rlist("pods", "2", "services", "0", "services.nodeports", "0", "requests.cpu", "500m", "limits.memory", "512Mi",
		"resourcequotas", "1", "count/poddisruptionbudgets.policy", "0", "configmaps", "0")
	waitUsed(t, ts, "q", "quota", used)
	refusals := []struct {
		name string
		err  error
		want string
	}{
		{"pods", ignore(pods.Create(ctx, podWith("p3", rlist("cpu", "100m"), rlist("memory", "1Mi")), metav1.CreateOptions{})),
			`pods "p3" is forbidden: exceeded quota: quota, requested: pods=1, used: pods=2, limited: pods=2`},
		{"unset request", ignore(pods.Create(ctx, podWith("p4", nil, nil), metav1.CreateOptions{})),
			`pods "p4" is forbidden: failed quota: quota: must specify limits.memory for: main; requests.cpu for: main`},
		{"node ports", ignore(ts.client.CoreV1().Services("q").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "np"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 81}}},
		}, metav1.CreateOptions{})),
			`services "np" is forbidden: exceeded quota: quota, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1`},
		{"quotas", ignore(ts.client.CoreV1().ResourceQuotas("q").Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "second"}}, metav1.CreateOptions{})),
			`resourcequotas "second" is forbidden: exceeded quota: quota, requested: resourcequotas=1, used: resourcequotas=1, limited: resourcequotas=1`},
	}
	for _, r := range refusals {
		if !apierrors.IsForbidden(r.err) || r.err.Error() != r.want {
			t.Errorf("%s: Create = %v, want 403 %q", r.name, r.err, r.want)
		}
	}
	pdbs := ts.client.PolicyV1().PodDisruptionBudgets("q")
	pdb := func(name string) *policyv1.PodDisruptionBudget {
		one := intstr.FromInt32(1)
		return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{}}}
	}
	if _, err := pdbs.Create(ctx, pdb("a"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create first PDB: %v", err)
	}
	if _, err := pdbs.Create(ctx, pdb("b"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("Create of a PDB over count/poddisruptionbudgets.policy = %v, want 403", err)
	}
	// A delete gives the quota back.
	if err := pods.Delete(ctx, "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	used["pods"], used["requests.cpu"], used["limits.memory"] = rlist("p", "1")["p"], rlist("c", "250m")["c"], rlist("m", "256Mi")["m"]
	used["count/poddisruptionbudgets.policy"] = rlist("n", "1")["n"]
	waitUsed(t, ts, "q", "quota", used)
	if _, err := pods.Create(ctx, podWith("p5", rlist("cpu", "250m"), rlist("memory", "256Mi")), metav1.CreateOptions{}); err != nil {
		t.Errorf("Create after a delete freed quota: %v", err)
	}
}

// Scoped quotas count only the pods in their scope.
func TestQuotaScopes(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	makeNamespace(t, ts, "s")
	makeQuota(t, ts, "s", "best-effort", corev1.ResourceQuotaSpec{Hard: rlist("pods", "1"), Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}})
	makeQuota(t, ts, "s", "terminating", corev1.ResourceQuotaSpec{Hard: rlist("pods", "0"), Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating}})
	pods := ts.client.CoreV1().Pods("s")
	if _, err := pods.Create(ctx, podWith("be", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("first BestEffort pod: %v", err)
	}
	if _, err := pods.Create(ctx, podWith("be2", nil, nil), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("second BestEffort pod = %v, want 403", err)
	}
	if _, err := pods.Create(ctx, podWith("burstable", rlist("cpu", "100m"), nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("a Burstable pod, outside the BestEffort scope: %v", err)
	}
	deadline := podWith("deadline", rlist("cpu", "100m"), nil)
	deadline.Spec.ActiveDeadlineSeconds = ptrTo(int64(60))
	if _, err := pods.Create(ctx, deadline, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a pod with activeDeadlineSeconds under a Terminating quota of 0 = %v, want 403", err)
	}
	waitUsed(t, ts, "s", "best-effort", rlist("pods", "1"))
}

// Concurrent creates never take a quota's usage over its hard limit.
func TestQuotaConcurrentCreates(t *testing.T) {
	ts := newTestServer(t)
	makeNamespace(t, ts, "c")
	makeQuota(t, ts, "c", "quota", corev1.ResourceQuotaSpec{Hard: rlist("pods", "5")})
	const creators = 20
	var wg sync.WaitGroup
	errs := make([]error, creators)
	for i := range creators {
		wg.Go(func() {
			_, errs[i] = ts.client.CoreV1().Pods("c").Create(testContext(t), podWith(fmt.Sprintf("p%d", i), nil, nil), metav1.CreateOptions{})
		})
	}
	wg.Wait()
	admitted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			admitted++
		case !apierrors.IsForbidden(err):
			t.Errorf("create %d = %v, want success or 403", i, err)
		}
	}
	list, err := ts.client.CoreV1().Pods("c").List(testContext(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if admitted != 5 || len(list.Items) != 5 {
		t.Errorf("admitted %d, stored %d pods, want 5 and 5", admitted, len(list.Items))
	}
	waitUsed(t, ts, "c", "quota", rlist("pods", "5"))
}

// TestQuotaExtendedResources: an extended resource's request counts as
// requests.NAME (its limit, equal to it, not again), and a pod that would
// pass that quota is refused, naming it.
func TestQuotaExtendedResources(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	makeNamespace(t, ts, "ext")
	makeQuota(t, ts, "ext", "quota", corev1.ResourceQuotaSpec{Hard: rlist("pods", "5", "requests.example.com/dongle", "3")})
	pods := ts.client.CoreV1().Pods("ext")
	dongles := rlist("example.com/dongle", "2")
	if _, err := pods.Create(ctx, podWith("first", dongles, dongles), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create first: %v", err)
	}
	waitUsed(t, ts, "ext", "quota", rlist("pods", "1", "requests.example.com/dongle", "2"))
	_, err := pods.Create(ctx, podWith("second", dongles, dongles), metav1.CreateOptions{})
	want := `pods "second" is forbidden: exceeded quota: quota, requested: requests.example.com/dongle=2, used: requests.example.com/dongle=2, limited: requests.example.com/dongle=3`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("Create second = %v, want 403 %q", err, want)
	}
}

func TestIsExtendedResource(t *testing.T) {
	for name, want := range map[corev1.ResourceName]bool{
		"example.com/dongle": true, "nvidia.com/gpu": true,
		"cpu": false, "hugepages-2Mi": false, "kubernetes.io/batteries": false, "node.kubernetes.io/x": false,
		"requests.example.com/dongle": false,
	} {
		if got := isExtendedResource(name); got != want {
			t.Errorf("isExtendedResource(%q) = %v, want %v", name, got, want)
		}
	}
}
