package registry

import (
	"context"
	"slices"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupAPIExtensions is the API group of CustomResourceDefinition.
const GroupAPIExtensions = "apiextensions.k8s.io"

// CRDCleanupFinalizer holds a CustomResourceDefinition being deleted until
// every object of its kind is gone, as in Kubernetes.
const CRDCleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io"

var crdResource = newCRDResource()

func newCRDResource() *Resource {
	r := &Resource{
		Name:       "customresourcedefinitions",
		Singular:   "customresourcedefinition",
		Kind:       "CustomResourceDefinition",
		Group:      GroupAPIExtensions,
		ShortNames: []string{"crd", "crds"},
		Categories: []string{"api-extensions"},
		HasStatus:  true,

		New:     func() runtime.Object { return &apiextensionsv1.CustomResourceDefinition{} },
		NewList: func() runtime.Object { return &apiextensionsv1.CustomResourceDefinitionList{} },

		PrepareForCreate:       mutate(prepareCRDForCreate),
		PrepareForUpdate:       mutatePair(prepareCRDForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareCRDForStatusUpdate),

		ValidateCreate:       check(validateCRD),
		ValidateUpdate:       checkPair(validateCRDUpdate),
		ValidateStatusUpdate: checkPair(validateCRDStatusUpdate),

		FieldSet: selectable(func(c *apiextensionsv1.CustomResourceDefinition) fields.Set {
			return metaFields(&c.ObjectMeta, nil)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Created At", "date", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"], false),
		},
		Row: printable(func(c *apiextensionsv1.CustomResourceDefinition, _ time.Time) []interface{} {
			return []interface{}{c.Name, c.CreationTimestamp.UTC().Format(time.RFC3339)}
		}),
	}
	notScalable(r)
	return r
}

// prepareCRDForCreate applies upstream's defaults, clears the status and
// records the storage version as stored.
func prepareCRDForCreate(c *apiextensionsv1.CustomResourceDefinition) {
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(c)
	c.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	c.Generation = 1
	addStoredVersion(c)
}

func prepareCRDForUpdate(c, old *apiextensionsv1.CustomResourceDefinition) {
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(c)
	c.Status = old.Status
	c.Generation = old.Generation
	if !apiequality.Semantic.DeepEqual(c.Spec, old.Spec) {
		c.Generation++
	}
	addStoredVersion(c)
}

func prepareCRDForStatusUpdate(c, old *apiextensionsv1.CustomResourceDefinition) {
	c.Spec = old.Spec
	c.Generation = old.Generation
}

// addStoredVersion adds the storage version to status.storedVersions:
// objects may be stored in it from now on.
func addStoredVersion(c *apiextensionsv1.CustomResourceDefinition) {
	for _, v := range c.Spec.Versions {
		if v.Storage && !slices.Contains(c.Status.StoredVersions, v.Name) {
			c.Status.StoredVersions = append(c.Status.StoredVersions, v.Name)
		}
	}
}

// internalCRD converts c to the internal type upstream's validation takes.
func internalCRD(c *apiextensionsv1.CustomResourceDefinition) (*apiextensions.CustomResourceDefinition, error) {
	out := &apiextensions.CustomResourceDefinition{}
	err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(c, out, nil)
	return out, err
}

// validateCRD checks a new CustomResourceDefinition with upstream's rules:
// names, versions (exactly one storage version), scope, a structural
// schema, printer columns, selectable fields, subresources and CEL rules.
func validateCRD(c *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	in, err := internalCRD(c)
	if err != nil {
		return field.ErrorList{field.Invalid(specPath, "", err.Error())}
	}
	return crdvalidation.ValidateCustomResourceDefinition(context.Background(), in)
}

func validateCRDUpdate(c, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	in, err := internalCRD(c)
	if err != nil {
		return field.ErrorList{field.Invalid(specPath, "", err.Error())}
	}
	oldIn, err := internalCRD(old)
	if err != nil {
		return field.ErrorList{field.Invalid(specPath, "", err.Error())}
	}
	return filterRV(crdvalidation.ValidateCustomResourceDefinitionUpdate(context.Background(), in, oldIn))
}

func validateCRDStatusUpdate(c, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	in, err := internalCRD(c)
	if err != nil {
		return field.ErrorList{field.Invalid(statusPath, "", err.Error())}
	}
	oldIn, err := internalCRD(old)
	if err != nil {
		return field.ErrorList{field.Invalid(statusPath, "", err.Error())}
	}
	return filterRV(crdvalidation.ValidateUpdateCustomResourceDefinitionStatus(context.Background(), in, oldIn))
}

// filterRV drops errors about metadata.resourceVersion, which the API
// server checks and clears before validation.
func filterRV(errs field.ErrorList) field.ErrorList {
	rv := metadataPath.Child("resourceVersion").String()
	return slices.DeleteFunc(errs, func(e *field.Error) bool { return e.Field == rv })
}
