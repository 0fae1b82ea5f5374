package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func budgetPod(name string, ready, deleting bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}}}
	p.Status.Phase = corev1.PodRunning
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	if deleting {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

func TestDisruptionStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &DisruptionController{opts: DisruptionOptions{Now: func() time.Time { return now }}}
	pods := []*corev1.Pod{
		budgetPod("a", true, false), budgetPod("b", true, false), budgetPod("c", true, false),
		budgetPod("d", false, false), budgetPod("gone", true, true),
	}
	num, pct := intstr.FromInt32, intstr.FromString
	tests := []struct {
		name              string
		minAvail, maxUnav *intstr.IntOrString
		disrupted         map[string]time.Time
		// expected, healthy, desired, allowed
		want [4]int32
	}{
		{"minAvailable 2", ptr(num(2)), nil, nil, [4]int32{4, 3, 2, 1}},
		{"minAvailable 50% rounds up", ptr(pct("50%")), nil, nil, [4]int32{4, 3, 2, 1}},
		{"minAvailable above healthy", ptr(num(4)), nil, nil, [4]int32{4, 3, 4, 0}},
		{"maxUnavailable 1", nil, ptr(num(1)), nil, [4]int32{4, 3, 3, 0}},
		{"maxUnavailable 50%", nil, ptr(pct("50%")), nil, [4]int32{4, 3, 2, 1}},
		{"neither", nil, nil, nil, [4]int32{4, 3, 4, 0}},
		{"disrupted pod not healthy", ptr(num(1)), nil, map[string]time.Time{"a": now.Add(-time.Minute)}, [4]int32{4, 2, 1, 1}},
		{"disruption timed out", ptr(num(1)), nil, map[string]time.Time{"a": now.Add(-3 * time.Minute)}, [4]int32{4, 3, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pdb := &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 3},
				Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: tc.minAvail, MaxUnavailable: tc.maxUnav},
			}
			for name, at := range tc.disrupted {
				if pdb.Status.DisruptedPods == nil {
					pdb.Status.DisruptedPods = map[string]metav1.Time{}
				}
				pdb.Status.DisruptedPods[name] = metav1.NewTime(at)
			}
			st, recheck := c.status(pdb, pods)
			got := [4]int32{st.ExpectedPods, st.CurrentHealthy, st.DesiredHealthy, st.DisruptionsAllowed}
			if got != tc.want {
				t.Errorf("expected, healthy, desired, allowed = %v, want %v", got, tc.want)
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d, want 3", st.ObservedGeneration)
			}
			wantCond := metav1.ConditionTrue
			if tc.want[3] == 0 {
				wantCond = metav1.ConditionFalse
			}
			if len(st.Conditions) != 1 || st.Conditions[0].Type != policyv1.DisruptionAllowedCondition || st.Conditions[0].Status != wantCond {
				t.Errorf("conditions = %+v, want DisruptionAllowed %s", st.Conditions, wantCond)
			}
			if tc.name == "disrupted pod not healthy" && recheck != time.Minute {
				t.Errorf("recheck after %v, want 1m (when the disruption times out)", recheck)
			}
		})
	}
}

// Pods of a ReplicationController count as its replicas, so missing ones
// are expected too.
func TestDisruptionExpectedFromReplicationController(t *testing.T) {
	e := newEnv(t)
	f := e.factory.Core().V1()
	c, err := NewDisruptionController(e.client, e.factory.Policy().V1().PodDisruptionBudgets(), f.Pods(), f.ReplicationControllers(), e.factory.Apps().V1(), e.lg, DisruptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 1) })
	rc, err := e.client.CoreV1().ReplicationControllers("default").Create(e.ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr[int32](5), Selector: map[string]string{"app": "web"},
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: testPodSpec()}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: rc.Name, UID: rc.UID, Controller: ptr(true)}}
	}
	for _, name := range []string{"web-1", "web-2", "web-3"} {
		e.createPod(name, map[string]string{"app": "web"}, owned)
		e.setPodStatus(name, corev1.PodRunning, "", true, 0)
	}
	pct := intstr.FromString("60%")
	if _, err := e.client.PolicyV1().PodDisruptionBudgets("default").Create(e.ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &pct, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 5, CurrentHealthy: 3, DesiredHealthy: 3, DisruptionsAllowed: 0})
	e.createPod("web-4", map[string]string{"app": "web"}, owned)
	e.setPodStatus("web-4", corev1.PodRunning, "", true, 0)
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 5, CurrentHealthy: 4, DesiredHealthy: 3, DisruptionsAllowed: 1})

	// Scaled to zero, the budget expects no pods: it allows no
	// disruption of those still there, as in Kubernetes.
	rc.Spec.Replicas = ptr[int32](0)
	if _, err := e.client.CoreV1().ReplicationControllers("default").Update(e.ctx, rc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 0, CurrentHealthy: 4, DesiredHealthy: 0, DisruptionsAllowed: 0})

	// An integer minAvailable expects the pods there are, whatever their
	// controller's replicas.
	pdb, err := e.client.PolicyV1().PodDisruptionBudgets("default").Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	two := intstr.FromInt32(2)
	pdb.Spec.MinAvailable = &two
	if _, err := e.client.PolicyV1().PodDisruptionBudgets("default").Update(e.ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 4, CurrentHealthy: 4, DesiredHealthy: 2, DisruptionsAllowed: 2})
}

// waitBudget waits until the budget's counts are want's.
func (e *env) waitBudget(name string, want policyv1.PodDisruptionBudgetStatus) *policyv1.PodDisruptionBudget {
	e.t.Helper()
	var pdb *policyv1.PodDisruptionBudget
	e.eventually("budget "+name, func() error {
		var err error
		if pdb, err = e.client.PolicyV1().PodDisruptionBudgets("default").Get(e.ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		got := policyv1.PodDisruptionBudgetStatus{ExpectedPods: pdb.Status.ExpectedPods, CurrentHealthy: pdb.Status.CurrentHealthy,
			DesiredHealthy: pdb.Status.DesiredHealthy, DisruptionsAllowed: pdb.Status.DisruptionsAllowed}
		if diff := cmp.Diff(want, got); diff != "" || pdb.Status.ObservedGeneration != pdb.Generation {
			return fmt.Errorf("status (-want +got):\n%s observedGeneration %d of %d", diff, pdb.Status.ObservedGeneration, pdb.Generation)
		}
		return nil
	})
	return pdb
}

// With the controller keeping the status, eviction takes the one
// disruption allowed, refuses the next with 429, and allows again once a
// replacement pod is ready.
func TestDisruptionWithEviction(t *testing.T) {
	e := newEnv(t)
	f := e.factory.Core().V1()
	c, err := NewDisruptionController(e.client, e.factory.Policy().V1().PodDisruptionBudgets(), f.Pods(), f.ReplicationControllers(), e.factory.Apps().V1(), e.lg, DisruptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })
	for _, name := range []string{"a", "b", "c"} {
		e.createPod(name, map[string]string{"app": "web"})
		e.setPodStatus(name, corev1.PodRunning, "", true, 0)
	}
	two := intstr.FromInt32(2)
	if _, err := e.client.PolicyV1().PodDisruptionBudgets("default").Create(e.ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &two, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, CurrentHealthy: 3, DesiredHealthy: 2, DisruptionsAllowed: 1})
	evict := func(name string) error {
		return e.client.PolicyV1().Evictions("default").Evict(e.ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
	}
	if err := evict("a"); err != nil {
		t.Fatalf("Evict(a) = %v", err)
	}
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 2, CurrentHealthy: 2, DesiredHealthy: 2, DisruptionsAllowed: 0})
	if err := evict("b"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("Evict(b) = %v, want 429", err)
	}
	e.createPod("d", map[string]string{"app": "web"})
	e.setPodStatus("d", corev1.PodRunning, "", true, 0)
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, CurrentHealthy: 3, DesiredHealthy: 2, DisruptionsAllowed: 1})
	if err := evict("b"); err != nil {
		t.Fatalf("Evict(b) after a replacement = %v", err)
	}
}

// Pods of a ReplicaSet that a Deployment controls count as the
// Deployment's replicas, as in Kubernetes.
func TestDisruptionExpectedFromDeployment(t *testing.T) {
	e := newEnv(t)
	f := e.factory.Core().V1()
	c, err := NewDisruptionController(e.client, e.factory.Policy().V1().PodDisruptionBudgets(), f.Pods(), f.ReplicationControllers(), e.factory.Apps().V1(), e.lg, DisruptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 1) })
	d := e.createDeployment("web", 6, appsv1.DeploymentStrategy{})
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", OwnerReferences: []metav1.OwnerReference{controllerRef(deploymentKind, &d.ObjectMeta)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr[int32](2), Selector: sel,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel.MatchLabels}, Spec: testPodSpec()}},
	}
	if rs, err = e.client.AppsV1().ReplicaSets("default").Create(e.ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1-a", "web-1-b", "web-1-c"} {
		e.createPod(name, sel.MatchLabels, func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{controllerRef(rsKind, &rs.ObjectMeta)}
		})
		e.setPodStatus(name, corev1.PodRunning, "", true, 0)
	}
	half := intstr.FromString("50%")
	if _, err := e.client.PolicyV1().PodDisruptionBudgets("default").Create(e.ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &half, Selector: sel},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 6, CurrentHealthy: 3, DesiredHealthy: 3, DisruptionsAllowed: 0})
	e.updateDeployment("web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr[int32](4) })
	e.waitBudget("web", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 4, CurrentHealthy: 3, DesiredHealthy: 2, DisruptionsAllowed: 1})
}
