package registry

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var templatePath = field.NewPath("template")

var podTemplateResource = newPodTemplateResource()

func newPodTemplateResource() *Resource {
	r := &Resource{
		Name:       "podtemplates",
		Singular:   "podtemplate",
		Kind:       "PodTemplate",
		Namespaced: true,

		New:     func() runtime.Object { return &corev1.PodTemplate{} },
		NewList: func() runtime.Object { return &corev1.PodTemplateList{} },

		PrepareForCreate:       mutate(preparePodTemplateForCreate),
		PrepareForUpdate:       mutatePair(preparePodTemplateForUpdate),
		PrepareForStatusUpdate: mutatePair(preparePodTemplateForStatusUpdate),

		ValidateCreate:       check(validatePodTemplate),
		ValidateUpdate:       checkPair(validatePodTemplateUpdate),
		ValidateStatusUpdate: checkPair(validatePodTemplateUpdate),

		FieldSet: selectable(func(t *corev1.PodTemplate) fields.Set { return metaFields(&t.ObjectMeta, nil) }),
		Columns:  podTemplateColumns,
		Row:      printable(podTemplateRow),
	}
	notScalable(r)
	return r
}

// preparePodTemplateForCreate applies the pod defaults to the template,
// so that pods made from it look as if created directly.
func preparePodTemplateForCreate(t *corev1.PodTemplate) {
	defaultPodSpec(&t.Template.Spec)
	t.Generation = 1
}

// preparePodTemplateForUpdate counts a change of the template in the
// generation, as Kubernetes does.
func preparePodTemplateForUpdate(t, old *corev1.PodTemplate) {
	defaultPodSpec(&t.Template.Spec)
	nextGeneration(&t.ObjectMeta, &old.ObjectMeta, t.Template, old.Template)
}

// preparePodTemplateForStatusUpdate keeps everything but metadata: pod
// templates have no status (and no status subresource).
func preparePodTemplateForStatusUpdate(t, old *corev1.PodTemplate) {
	t.Template = old.Template
	t.Generation = old.Generation
}

func validatePodTemplate(t *corev1.PodTemplate) field.ErrorList {
	errs := validateMeta(&t.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validatePodTemplateSpec(&t.Template, templatePath)...)
}

func validatePodTemplateUpdate(t, old *corev1.PodTemplate) field.ErrorList {
	errs := validateMetaUpdate(&t.ObjectMeta, &old.ObjectMeta)
	return append(errs, validatePodTemplateSpec(&t.Template, templatePath)...)
}

// validatePodTemplateSpec checks a template's labels, annotations and
// pod spec. Ephemeral containers are added to running pods only, never
// through a template.
func validatePodTemplateSpec(t *corev1.PodTemplateSpec, path *field.Path) field.ErrorList {
	metaPath := path.Child("metadata")
	errs := v1validation.ValidateLabels(t.Labels, metaPath.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, metaPath.Child("annotations"))...)
	specPath := path.Child("spec")
	errs = append(errs, validatePodSpec(&t.Spec, specPath)...)
	if len(t.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

// podTemplateColumns are kubectl's: no age column.
var podTemplateColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Containers", "string", "Names of each container in the template.", false),
	column("Images", "string", "Images referenced by each container in the template.", false),
	column("Pod Labels", "string", "The labels for the pod template.", false),
}

func podTemplateRow(t *corev1.PodTemplate, _ time.Time) []interface{} {
	names, images := containerCells(t.Template.Spec.Containers)
	return []interface{}{t.Name, names, images, labels.FormatLabels(t.Template.Labels)}
}

// containerCells joins the containers' names and images for the
// Containers and Images columns.
func containerCells(cs []corev1.Container) (names, images string) {
	n := make([]string, len(cs))
	im := make([]string, len(cs))
	for i, c := range cs {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}
