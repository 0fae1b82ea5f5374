package registry

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource describes one API resource served under /api/v1 and how objects
// of its kind are defaulted, validated, filtered and printed. The API server
// is generic; everything kind-specific lives here.
//
// Every func field is set (never nil) for every resource returned by All.
// Funcs receive typed objects (*corev1.Pod for pods, …) and are safe for
// concurrent use; they may modify the object passed in but nothing else.
type Resource struct {
	Name     string // plural, lower case: "pods"
	Singular string // "pod"
	Kind     string // "Pod"
	// Group is the API group, "" for core.
	Group string
	// Version is the version served, "" for v1. A kind served in several
	// versions has one Resource per version: the one stored, and views of
	// it (see View) for the others.
	Version    string
	ShortNames []string
	// Categories group the resource in discovery (`kubectl get all`).
	Categories []string
	Namespaced bool
	HasStatus  bool // serves the status subresource
	HasScale   bool // serves the scale subresource (ReplicationController)
	// Approval, when set, serves the approval subresource
	// (CertificateSigningRequest); nil for every other kind.
	Approval *Approval
	// View, when set, makes the resource serve the objects of another
	// (see View); nil for a resource with storage of its own.
	View *View
	// Custom is set for a resource served for a CustomResourceDefinition:
	// its objects are *unstructured.Unstructured, stored as JSON.
	Custom *Custom

	// New returns an empty object; NewList an empty list (*corev1.PodList).
	New     func() runtime.Object
	NewList func() runtime.Object

	// PrepareForCreate clears what a client may not set on create (status,
	// except where the kind allows it) and applies defaults.
	PrepareForCreate func(obj runtime.Object)
	// PrepareForUpdate keeps old's status in obj (main resource update)
	// and applies defaults.
	PrepareForUpdate func(obj, old runtime.Object)
	// PrepareForStatusUpdate keeps old's spec (everything but status and
	// metadata) in obj.
	PrepareForStatusUpdate func(obj, old runtime.Object)

	// ValidateCreate checks a defaulted object about to be created,
	// metadata included. Paths are relative to the object ("spec.x").
	ValidateCreate func(obj runtime.Object) field.ErrorList
	// ValidateUpdate checks obj against old (immutable fields, etc.).
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// ValidateStatusUpdate checks a status write.
	ValidateStatusUpdate func(obj, old runtime.Object) field.ErrorList

	// FieldSet gives the fields usable in field selectors: always
	// metadata.name and metadata.namespace, plus kind-specific ones
	// (spec.nodeName and status.phase for pods, …).
	FieldSet func(obj runtime.Object) fields.Set

	// Columns describes the table kubectl shows for this kind; Row gives
	// one row's cells (same length as Columns). Wide-only columns have
	// Priority 1.
	Columns []metav1.TableColumnDefinition
	Row     func(obj runtime.Object) []interface{}

	// Replicas and SetReplicas serve the scale subresource (HasScale):
	// spec replicas, status replicas and the label selector in string form.
	Replicas    func(obj runtime.Object) (spec, status int32, selector string)
	SetReplicas func(obj runtime.Object, n int32)
}

// GroupVersion is the group and version the resource is served in:
// core "v1" (under /api/v1) or GROUP/VERSION (under /apis/GROUP/VERSION).
func (r *Resource) GroupVersion() schema.GroupVersion {
	v := r.Version
	if v == "" {
		v = "v1"
	}
	return schema.GroupVersion{Group: r.Group, Version: v}
}
