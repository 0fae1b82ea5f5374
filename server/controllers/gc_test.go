package controllers

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func startGC(e *env) {
	e.t.Helper()
	gc, err := NewGarbageCollector(e.client, e.factory, e.lg, GarbageCollectorOptions{})
	if err != nil {
		e.t.Fatalf("NewGarbageCollector: %v", err)
	}
	e.run(func(ctx context.Context) error { return gc.Run(ctx, 2) })
}

// createOwner creates an RC with no replicas (no controller runs in these
// tests) and the given finalizers.
func (e *env) createOwner(name string, finalizers ...string) *corev1.ReplicationController {
	e.t.Helper()
	rc := e.createRC(name, 0, map[string]string{"owner": name}, map[string]string{"owner": name})
	if len(finalizers) == 0 {
		return rc
	}
	rc.Finalizers = finalizers
	out, err := e.client.CoreV1().ReplicationControllers("default").Update(e.ctx, rc, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("set finalizers of %q: %v", name, err)
	}
	return out
}

func ownedBy(owners ...*corev1.ReplicationController) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		for _, o := range owners {
			p.OwnerReferences = append(p.OwnerReferences, controllerRef(rcKind, &o.ObjectMeta))
			p.OwnerReferences[len(p.OwnerReferences)-1].Controller = nil
		}
	}
}

func nonBlocking(p *corev1.Pod) {
	for i := range p.OwnerReferences {
		p.OwnerReferences[i].BlockOwnerDeletion = nil
	}
}

func (e *env) deleteRC(name string) {
	e.t.Helper()
	if err := e.client.CoreV1().ReplicationControllers("default").Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete rc %q: %v", name, err)
	}
}

func (e *env) waitGone(what string, get func() error) {
	e.t.Helper()
	e.eventually(what+" gone", func() error {
		err := get()
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get = %v, want NotFound", err)
	})
}

func (e *env) getPod(name string) (*corev1.Pod, error) {
	return e.client.CoreV1().Pods("default").Get(e.ctx, name, metav1.GetOptions{})
}

func (e *env) getRC(name string) (*corev1.ReplicationController, error) {
	return e.client.CoreV1().ReplicationControllers("default").Get(e.ctx, name, metav1.GetOptions{})
}

func ownerNames(p *corev1.Pod) []string {
	var out []string
	for _, r := range p.OwnerReferences {
		out = append(out, r.Name)
	}
	return out
}

func TestGCBackground(t *testing.T) {
	e := newEnv(t)
	startGC(e)
	owner, other := e.createOwner("owner"), e.createOwner("other")
	e.createPod("d1", nil, ownedBy(owner))
	e.createPod("d2", nil, ownedBy(owner), nonBlocking)
	e.createPod("shared", nil, ownedBy(owner, other))
	e.createPod("foreign", nil, func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Widget", Name: "x", UID: "u-x"}}
	})
	e.createPod("stale", nil, func(p *corev1.Pod) {
		// The right name, but the uid of an earlier object.
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "other", UID: "old-uid"}}
	})

	e.deleteRC("owner")
	for _, name := range []string{"d1", "d2", "stale"} {
		e.waitGone("pod "+name, func() error { _, err := e.getPod(name); return err })
	}
	e.eventually("shared keeps its other owner", func() error {
		p, err := e.getPod("shared")
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"other"}, ownerNames(p)); diff != "" {
			return fmt.Errorf("owners (-want +got):\n%s", diff)
		}
		return nil
	})
	if _, err := e.getPod("foreign"); err != nil {
		t.Errorf("pod owned by a kind not followed: %v, want it kept", err)
	}
}

func TestGCForeground(t *testing.T) {
	e := newEnv(t)
	startGC(e)
	owner := e.createOwner("owner", metav1.FinalizerDeleteDependents)
	onNode := func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }
	e.createPod("blocking", nil, ownedBy(owner), onNode)
	e.createPod("loose", nil, ownedBy(owner), nonBlocking)
	e.createPod("unrelated", nil)

	e.deleteRC("owner")
	e.waitGone("pod loose", func() error { _, err := e.getPod("loose"); return err })
	e.eventually("blocking pod terminating", func() error {
		p, err := e.getPod("blocking")
		if err != nil {
			return err
		}
		if p.DeletionTimestamp == nil {
			return fmt.Errorf("blocking pod has no deletionTimestamp")
		}
		return nil
	})
	// The blocking pod waits for its node; so does the owner.
	rc, err := e.getRC("owner")
	if err != nil {
		t.Fatalf("owner while a blocking dependent remains: %v, want it kept", err)
	}
	if rc.DeletionTimestamp == nil {
		t.Error("owner has no deletionTimestamp")
	}
	zero := int64(0)
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, "blocking", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("owner", func() error { _, err := e.getRC("owner"); return err })
	if _, err := e.getPod("unrelated"); err != nil {
		t.Errorf("unrelated pod: %v", err)
	}
}

// TestGCForegroundKeepsDependentsOfAnotherOwner: a foreground deletion of
// one owner deletes the dependents it alone owns, and only drops its
// reference from those another live owner also has; the owner then goes.
func TestGCForegroundKeepsDependentsOfAnotherOwner(t *testing.T) {
	e := newEnv(t)
	startGC(e)
	owner := e.createOwner("owner", metav1.FinalizerDeleteDependents)
	other := e.createOwner("other")
	e.createPod("only", nil, ownedBy(owner))
	e.createPod("shared", nil, ownedBy(owner, other))

	e.deleteRC("owner")
	e.waitGone("pod only", func() error { _, err := e.getPod("only"); return err })
	e.waitGone("owner", func() error { _, err := e.getRC("owner"); return err })
	p, err := e.getPod("shared")
	if err != nil {
		t.Fatalf("pod with another live owner: %v, want it kept", err)
	}
	if p.DeletionTimestamp != nil {
		t.Errorf("pod with another live owner is being deleted")
	}
	if diff := cmp.Diff([]string{"other"}, ownerNames(p)); diff != "" {
		t.Errorf("owners of the kept pod (-want +got):\n%s", diff)
	}
}

// TestGCDependencyCircle: a foreground deletion is not blocked by a
// circle of blocking owner references (pod1 owned by pod3, owned by pod2,
// owned by pod1): every pod of the circle goes.
func TestGCDependencyCircle(t *testing.T) {
	e := newEnv(t)
	startGC(e)
	ownedByPod := func(o *corev1.Pod) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: o.Name, UID: o.UID, BlockOwnerDeletion: ptr(true)}}
		}
	}
	pod1 := e.createPod("pod1", nil)
	pod2 := e.createPod("pod2", nil, ownedByPod(pod1))
	pod3 := e.createPod("pod3", nil, ownedByPod(pod2))
	ownedByPod(pod3)(pod1)
	if _, err := e.client.CoreV1().Pods("default").Update(e.ctx, pod1, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("close the circle: %v", err)
	}
	fg := metav1.DeletePropagationForeground
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, "pod1", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatalf("delete pod1: %v", err)
	}
	for _, name := range []string{"pod1", "pod2", "pod3"} {
		e.waitGone("pod "+name, func() error { _, err := e.getPod(name); return err })
	}
}

func TestGCOrphan(t *testing.T) {
	e := newEnv(t)
	startGC(e)
	owner := e.createOwner("owner", metav1.FinalizerOrphanDependents)
	other := e.createOwner("other")
	e.createPod("d1", nil, ownedBy(owner))
	e.createPod("d2", nil, ownedBy(owner, other))

	e.deleteRC("owner")
	e.waitGone("owner", func() error { _, err := e.getRC("owner"); return err })
	want := map[string][]string{"d1": nil, "d2": {"other"}}
	for name, owners := range want {
		p, err := e.getPod(name)
		if err != nil {
			t.Fatalf("orphaned pod %q: %v", name, err)
		}
		if diff := cmp.Diff(owners, ownerNames(p)); diff != "" {
			t.Errorf("owners of %q (-want +got):\n%s", name, diff)
		}
	}
}

// TestGCGroupedDependents checks dependents of other API groups: a node
// Lease goes with its Node.
func TestGCGroupedDependents(t *testing.T) {
	e := newEnv(t)
	startGC(e)
	node, err := e.client.CoreV1().Nodes().Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leases := e.client.CoordinationV1().Leases("kube-node-lease")
	_, err = leases.Create(e.ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: "n1", OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: node.UID}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.CoreV1().Nodes().Delete(e.ctx, "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("lease deleted", func() error {
		_, err := leases.Get(e.ctx, "n1", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get lease = %v, want NotFound", err)
	})
}
