package admission

import (
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Attributes describe one request being admitted.
type Attributes struct {
	Operation   admissionv1.Operation
	Kind        schema.GroupVersionKind
	Resource    schema.GroupVersionResource
	SubResource string
	// Namespaced tells whether Resource is namespaced (for rule scopes).
	Namespaced bool
	Namespace  string
	Name       string
	User       authenticationv1.UserInfo
	// Object is the object to write (nil for a delete); Mutate replaces
	// it with the patched one. OldObject is the current one (nil for a
	// create).
	Object    runtime.Object
	OldObject runtime.Object
	// Options are the CreateOptions, UpdateOptions, PatchOptions or
	// DeleteOptions of the request (may be nil).
	Options runtime.Object
	DryRun  bool
}

// labels returns obj's labels (nil for a nil object).
func labelsOf(obj runtime.Object) map[string]string {
	if obj == nil {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return m.GetLabels()
}

// toMap returns obj as its JSON form, with apiVersion and kind set to gvk
// (nil for a nil object).
func toMap(obj runtime.Object, gvk schema.GroupVersionKind) (map[string]any, error) {
	if obj == nil {
		return nil, nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	if gvk.Kind != "" {
		m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
	}
	return m, nil
}

// rawOf returns obj as JSON with its apiVersion and kind, for an
// AdmissionReview.
func rawOf(obj runtime.Object, gvk schema.GroupVersionKind) (runtime.RawExtension, error) {
	if obj == nil {
		return runtime.RawExtension{}, nil
	}
	m, err := toMap(obj, gvk)
	if err != nil {
		return runtime.RawExtension{}, err
	}
	b, err := json.Marshal(m)
	return runtime.RawExtension{Raw: b}, err
}
