package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestGCMetadataKinds checks kinds no controller has a typed informer of,
// followed by their metadata: deleted in the foreground, as owners and as
// dependents.
func TestGCMetadataKinds(t *testing.T) {
	e := newEnv(t)
	gc, err := NewGarbageCollector(e.client, e.factory, e.lg, GarbageCollectorOptions{Loopback: e.cfg})
	if err != nil {
		t.Fatalf("NewGarbageCollector: %v", err)
	}
	e.run(func(ctx context.Context) error { return gc.Run(ctx, 2) })
	secrets := e.client.CoreV1().Secrets("default")
	configMaps := e.client.CoreV1().ConfigMaps("default")
	foreground := metav1.DeletePropagationForeground

	// A Secret without dependents deleted in the foreground goes at once.
	if _, err := secrets.Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "lonely"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := secrets.Delete(e.ctx, "lonely", metav1.DeleteOptions{PropagationPolicy: &foreground}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("Secret deleted in the foreground", func() error { _, err := secrets.Get(e.ctx, "lonely", metav1.GetOptions{}); return err })

	// A ConfigMap owned by a Secret goes with it.
	owner, err := secrets.Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owned", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "Secret", Name: owner.Name, UID: owner.UID},
	}}}
	if _, err := configMaps.Create(e.ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := secrets.Delete(e.ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("ConfigMap owned by a deleted Secret", func() error { _, err := configMaps.Get(e.ctx, "owned", metav1.GetOptions{}); return err })

	// A ServiceAccount deleted in the foreground waits for its blocking
	// dependent pod, which the collector deletes first.
	sa, err := e.client.CoreV1().ServiceAccounts("default").Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.createPod("worker", nil, func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ServiceAccount", Name: sa.Name, UID: sa.UID, BlockOwnerDeletion: ptr(true)}}
	})
	if err := e.client.CoreV1().ServiceAccounts("default").Delete(e.ctx, "robot", metav1.DeleteOptions{PropagationPolicy: &foreground}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("pod of a ServiceAccount deleted in the foreground", func() error { _, err := e.getPod("worker"); return err })
	e.waitGone("ServiceAccount deleted in the foreground", func() error {
		_, err := e.client.CoreV1().ServiceAccounts("default").Get(e.ctx, "robot", metav1.GetOptions{})
		return err
	})
}
