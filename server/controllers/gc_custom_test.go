package controllers

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var gizmos = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gizmos"}

// establishGizmos defines the namespaced kind Gizmo and waits until it
// is served.
func (e *env) establishGizmos() {
	e.t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gizmos.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gizmos", Singular: "gizmo", Kind: "Gizmo"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr(true),
				}},
			}},
		},
	}
	c := apiextensionsclient.NewForConfigOrDie(e.cfg).ApiextensionsV1().CustomResourceDefinitions()
	if _, err := c.Create(e.ctx, crd, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create CRD: %v", err)
	}
	e.eventually("gizmos established", func() error {
		got, err := c.Get(e.ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !established(got) {
			return fmt.Errorf("conditions %+v", got.Status.Conditions)
		}
		return nil
	})
}

func (e *env) createGizmo(name string, owners ...metav1.OwnerReference) *unstructured.Unstructured {
	e.t.Helper()
	u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "example.com/v1", "kind": "Gizmo"}}
	u.SetName(name)
	u.SetOwnerReferences(owners)
	out, err := dynamic.NewForConfigOrDie(e.cfg).Resource(gizmos).Namespace("default").Create(e.ctx, u, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create gizmo %q: %v", name, err)
	}
	return out
}

func TestGCCustomKinds(t *testing.T) {
	e := newEnv(t)
	e.establishGizmos()
	gc, err := NewGarbageCollector(e.client, e.factory, e.lg, GarbageCollectorOptions{Loopback: e.cfg})
	if err != nil {
		t.Fatalf("NewGarbageCollector: %v", err)
	}
	e.run(func(ctx context.Context) error { return gc.Run(ctx, 2) })
	gizmoClient := dynamic.NewForConfigOrDie(e.cfg).Resource(gizmos).Namespace("default")

	// A pod owned by a Gizmo goes with it.
	owner := e.createGizmo("owner")
	e.createPod("dep", nil, func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Gizmo", Name: "owner", UID: owner.GetUID()}}
	})
	if err := gizmoClient.Delete(e.ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("pod owned by a deleted Gizmo", func() error { _, err := e.getPod("dep"); return err })

	// A Gizmo owned by a pod goes with it.
	pod := e.createPod("boss", nil)
	e.createGizmo("minion", metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: "boss", UID: pod.UID})
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, "boss", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("Gizmo owned by a deleted pod", func() error { _, err := gizmoClient.Get(e.ctx, "minion", metav1.GetOptions{}); return err })

	// A Gizmo deleted in the foreground waits for its dependents.
	fg := e.createGizmo("fg")
	e.createGizmo("fg-dep", metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Gizmo", Name: "fg", UID: fg.GetUID(), BlockOwnerDeletion: ptr(true)})
	fgPolicy := metav1.DeletePropagationForeground
	if err := gizmoClient.Delete(e.ctx, "fg", metav1.DeleteOptions{PropagationPolicy: &fgPolicy}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("dependent Gizmo of a foreground deletion", func() error { _, err := gizmoClient.Get(e.ctx, "fg-dep", metav1.GetOptions{}); return err })
	e.waitGone("Gizmo deleted in the foreground", func() error { _, err := gizmoClient.Get(e.ctx, "fg", metav1.GetOptions{}); return err })
}
