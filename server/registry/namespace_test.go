package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func testNamespace() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
}

func validNamespace() *corev1.Namespace {
	ns := testNamespace()
	namespaceResource.PrepareForCreate(ns)
	return ns
}

func TestNamespacePrepareForCreate(t *testing.T) {
	ns := testNamespace()
	ns.Status.Phase = corev1.NamespaceTerminating
	namespaceResource.PrepareForCreate(ns)
	want := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a", Generation: 1, Labels: map[string]string{"kubernetes.io/metadata.name": "team-a"}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	if diff := cmp.Diff(want, ns); diff != "" {
		t.Errorf("PrepareForCreate (-want +got):\n%s", diff)
	}
}

func TestValidateNamespace(t *testing.T) {
	runValidation(t, namespaceResource, validNamespace, []validationCase[*corev1.Namespace]{
		{name: "valid"},
		{"name a DNS label", func(ns *corev1.Namespace) { ns.Name = "team.a" }, []string{errKey(invalid, "metadata.name")}},
		{"name required", func(ns *corev1.Namespace) { ns.Name = "" }, []string{errKey(required, "metadata.name")}},
		{"cluster-scoped", func(ns *corev1.Namespace) { ns.Namespace = "default" }, []string{errKey(forbidden, "metadata.namespace")}},
		{"qualified finalizer", func(ns *corev1.Namespace) {
			ns.Spec.Finalizers = append(ns.Spec.Finalizers, "example.com/cleanup")
		}, nil},
		{"unqualified finalizer", func(ns *corev1.Namespace) { ns.Spec.Finalizers = append(ns.Spec.Finalizers, "cleanup") },
			[]string{errKey(invalid, "spec.finalizers[1]")}},
		{"phase supported", func(ns *corev1.Namespace) { ns.Status.Phase = "Gone" }, []string{errKey(notSupported, "status.phase")}},
	})
}

func TestNamespaceUpdate(t *testing.T) {
	old := stored(namespaceResource, testNamespace())
	ns := old.DeepCopy()
	ns.Labels = map[string]string{"team": "a"}
	ns.Spec.Finalizers = nil
	ns.Status.Phase = corev1.NamespaceTerminating
	namespaceResource.PrepareForUpdate(ns, old)
	if errs := namespaceResource.ValidateUpdate(ns, old); len(errs) > 0 {
		t.Fatalf("ValidateUpdate: %v", errs)
	}
	want := old.DeepCopy()
	want.Labels = map[string]string{"team": "a", "kubernetes.io/metadata.name": "team-a"}
	if diff := cmp.Diff(want, ns); diff != "" {
		t.Errorf("PrepareForUpdate kept status and finalizers (-want +got):\n%s", diff)
	}

	base := func() *corev1.Namespace { return stored(namespaceResource, testNamespace()) }
	runUpdate(t, namespaceResource, true, base, []validationCase[*corev1.Namespace]{
		{"terminating", func(ns *corev1.Namespace) { ns.Status.Phase = corev1.NamespaceTerminating }, nil},
		{"phase supported", func(ns *corev1.Namespace) { ns.Status.Phase = "Gone" }, []string{errKey(notSupported, "status.phase")}},
	})
}

func TestNamespaceFieldSetAndRow(t *testing.T) {
	ns := validNamespace()
	ns.CreationTimestamp = ago(45 * time.Second)
	want := fields.Set{"metadata.name": "team-a", "metadata.namespace": "", "status.phase": "Active"}
	if diff := cmp.Diff(want, namespaceResource.FieldSet(ns)); diff != "" {
		t.Errorf("FieldSet (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]interface{}{"team-a", "Active", "45s"}, namespaceRow(ns, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
