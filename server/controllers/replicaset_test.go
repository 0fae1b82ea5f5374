package controllers

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startReplicaSets runs a ReplicaSet manager, and with it the garbage
// collector when gc is set (one e.run, as the informers start once).
func startReplicaSets(e *env, gc bool) *ReplicaManager {
	e.t.Helper()
	m, err := NewReplicaSetManager(e.client, e.factory.Apps().V1().ReplicaSets(), e.factory.Core().V1().Pods(), e.lg, ReplicationOptions{})
	if err != nil {
		e.t.Fatalf("NewReplicaSetManager: %v", err)
	}
	runs := []func(context.Context) error{func(ctx context.Context) error { return m.Run(ctx, 2) }}
	if gc {
		c, err := NewGarbageCollector(e.client, e.factory, e.lg, GarbageCollectorOptions{})
		if err != nil {
			e.t.Fatalf("NewGarbageCollector: %v", err)
		}
		runs = append(runs, func(ctx context.Context) error { return c.Run(ctx, 2) })
	}
	e.run(runs...)
	return m
}

func (e *env) createRS(name string, replicas int32, sel *metav1.LabelSelector, tmplLabels map[string]string) *appsv1.ReplicaSet {
	e.t.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: sel,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tmplLabels}, Spec: testPodSpec()},
		},
	}
	out, err := e.client.AppsV1().ReplicaSets("default").Create(e.ctx, rs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create replicaset %q: %v", name, err)
	}
	return out
}

func (e *env) waitRSStatus(name string, want appsv1.ReplicaSetStatus) {
	e.t.Helper()
	e.eventually("status of "+name, func() error {
		rs, err := e.client.AppsV1().ReplicaSets("default").Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		got := rs.Status
		got.Conditions = nil
		want.ObservedGeneration = rs.Generation
		if !apiequality.Semantic.DeepEqual(got, want) {
			return fmt.Errorf("status = %+v, want %+v", got, want)
		}
		return nil
	})
}

func TestReplicaSetCreatesAndScales(t *testing.T) {
	e := newEnv(t)
	startReplicaSets(e, false)
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "api"}},
	}}
	rs := e.createRS("web", 3, sel, map[string]string{"app": "web"})
	e.waitRSStatus("web", appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3})
	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: rs.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref == nil || !apiequality.Semantic.DeepEqual(*ref, want) {
			t.Errorf("pod %q controller = %+v, want %+v", p.Name, ref, want)
		}
	}
	for _, p := range list.Items[:2] {
		e.setPodStatus(p.Name, corev1.PodRunning, "10.42.0.9", true, 0)
	}
	e.waitRSStatus("web", appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2})

	scale, err := e.client.AppsV1().ReplicaSets("default").GetScale(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 1
	if _, err := e.client.AppsV1().ReplicaSets("default").UpdateScale(e.ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitRSStatus("web", appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1})
	if got := e.activePodNames(); len(got) != 1 {
		t.Errorf("pods after scaling to 1 = %v", got)
	}
}

func TestReplicaSetAdoptsAndReleases(t *testing.T) {
	e := newEnv(t)
	startReplicaSets(e, false)
	e.createPod("orphan", map[string]string{"app": "web", "track": "canary"})
	e.createPod("other", map[string]string{"app": "web", "track": "stable"})
	sel := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "track", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"stable"}}},
	}
	rs := e.createRS("web", 2, sel, map[string]string{"app": "web"})
	e.waitRSStatus("web", appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2})
	pods := e.client.CoreV1().Pods("default")
	orphan, err := pods.Get(e.ctx, "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(orphan); ref == nil || ref.UID != rs.UID {
		t.Fatalf("orphan controller = %+v, want replicaset %s", ref, rs.UID)
	}
	if other, err := pods.Get(e.ctx, "other", metav1.GetOptions{}); err != nil || len(other.OwnerReferences) != 0 {
		t.Fatalf("pod the selector excludes: %v, owners %+v; want none", err, other.OwnerReferences)
	}
	orphan.Labels["track"] = "stable"
	if _, err := pods.Update(e.ctx, orphan, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("release", func() error {
		p, err := pods.Get(e.ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(p.OwnerReferences) != 0 {
			return fmt.Errorf("ownerReferences = %+v, want none", p.OwnerReferences)
		}
		return nil
	})
	// The status may still be the one from before the release: wait for
	// the replacement itself.
	e.eventually("replacement of the released pod", func() error {
		if got := e.activePodNames(); len(got) != 4 {
			return fmt.Errorf("pods = %v, want 2 released or excluded and 2 of the replicaset", got)
		}
		return nil
	})
	e.waitRSStatus("web", appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2})
}

func TestGCCascadesFromReplicaSet(t *testing.T) {
	e := newEnv(t)
	startReplicaSets(e, true)
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	e.createRS("web", 2, sel, sel.MatchLabels)
	e.waitRSStatus("web", appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2})
	bg := metav1.DeletePropagationBackground
	if err := e.client.AppsV1().ReplicaSets("default").Delete(e.ctx, "web", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	e.eventually("pods deleted with their replicaset", func() error {
		if got := e.activePodNames(); len(got) != 0 {
			return fmt.Errorf("pods not being deleted: %v", got)
		}
		return nil
	})
}
