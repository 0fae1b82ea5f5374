package registry

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var namespaceResource = newNamespaceResource()

func newNamespaceResource() *Resource {
	r := &Resource{
		Name:       "namespaces",
		Singular:   "namespace",
		Kind:       "Namespace",
		ShortNames: []string{"ns"},
		HasStatus:  true,

		New:     func() runtime.Object { return &corev1.Namespace{} },
		NewList: func() runtime.Object { return &corev1.NamespaceList{} },

		PrepareForCreate:       mutate(prepareNamespaceForCreate),
		PrepareForUpdate:       mutatePair(prepareNamespaceForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareNamespaceForStatusUpdate),

		ValidateCreate:       check(validateNamespace),
		ValidateUpdate:       checkPair(validateNamespaceUpdate),
		ValidateStatusUpdate: checkPair(validateNamespaceStatusUpdate),

		FieldSet: selectable(namespaceFields),
		Columns:  namespaceColumns,
		Row:      printable(namespaceRow),
	}
	notScalable(r)
	return r
}

// prepareNamespaceForCreate makes a new namespace Active and adds the
// kubernetes finalizer, which the API server removes once the
// namespace's content is gone.
func prepareNamespaceForCreate(ns *corev1.Namespace) {
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
	labelNamespaceName(ns)
	ns.Generation = 1
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
}

// prepareNamespaceForUpdate keeps old's status and finalizers: those
// change through the status and finalize subresources.
func prepareNamespaceForUpdate(ns, old *corev1.Namespace) {
	ns.Spec.Finalizers = old.Spec.Finalizers
	labelNamespaceName(ns)
	ns.Status = old.Status
	nextGeneration(&ns.ObjectMeta, &old.ObjectMeta, ns.Spec, old.Spec)
}

func prepareNamespaceForStatusUpdate(ns, old *corev1.Namespace) {
	ns.Spec = old.Spec
	ns.Generation = old.Generation
}

// labelNamespaceName sets the kubernetes.io/metadata.name label, which
// lets label selectors pick namespaces by name. A namespace created with
// generateName gets it on its first update.
func labelNamespaceName(ns *corev1.Namespace) {
	if ns.Name == "" {
		return
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := validateMeta(&ns.ObjectMeta, false, apivalidation.NameIsDNSLabel)
	errs = append(errs, validateFinalizers(ns.Spec.Finalizers)...)
	return append(errs, validateNamespaceStatus(&ns.Status)...)
}

func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateFinalizers(ns.Spec.Finalizers)...)
}

func validateNamespaceStatusUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateNamespaceStatus(&ns.Status)...)
}

// validateFinalizers allows the standard "kubernetes" finalizer and
// domain-qualified ones.
func validateFinalizers(fs []corev1.FinalizerName) field.ErrorList {
	var errs field.ErrorList
	for i, f := range fs {
		p := specPath.Child("finalizers").Index(i)
		s := string(f)
		errs = append(errs, messages(p, s, validation.IsQualifiedName(s))...)
		if !strings.Contains(s, "/") && f != corev1.FinalizerKubernetes {
			errs = append(errs, field.Invalid(p, s, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

func validateNamespaceStatus(st *corev1.NamespaceStatus) field.ErrorList {
	return validateOptionalEnum(st.Phase, statusPath.Child("phase"), corev1.NamespaceActive, corev1.NamespaceTerminating)
}

func namespaceFields(ns *corev1.Namespace) fields.Set {
	return metaFields(&ns.ObjectMeta, fields.Set{"status.phase": string(ns.Status.Phase)})
}

var namespaceColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Status", "string", "The status of the namespace", false),
	ageColumn(),
}

func namespaceRow(ns *corev1.Namespace, now time.Time) []interface{} {
	return []interface{}{ns.Name, string(ns.Status.Phase), since(ns.CreationTimestamp.Time, now)}
}
