package registry

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var serviceAccountResource = newServiceAccountResource()

func newServiceAccountResource() *Resource {
	r := &Resource{
		Name:       "serviceaccounts",
		Singular:   "serviceaccount",
		Kind:       "ServiceAccount",
		ShortNames: []string{"sa"},
		Namespaced: true,

		New:     func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList: func() runtime.Object { return &corev1.ServiceAccountList{} },

		PrepareForCreate:       mutate(func(*corev1.ServiceAccount) {}),
		PrepareForUpdate:       mutatePair(keepGeneration[*corev1.ServiceAccount]),
		PrepareForStatusUpdate: mutatePair(prepareServiceAccountForStatusUpdate),

		ValidateCreate:       check(validateServiceAccount),
		ValidateUpdate:       checkPair(validateServiceAccountUpdate),
		ValidateStatusUpdate: checkPair(validateServiceAccountUpdate),

		FieldSet: selectable(func(sa *corev1.ServiceAccount) fields.Set { return metaFields(&sa.ObjectMeta, nil) }),
		Columns:  serviceAccountColumns,
		Row:      printable(serviceAccountRow),
	}
	notScalable(r)
	return r
}

// prepareServiceAccountForStatusUpdate keeps everything but metadata:
// ServiceAccounts have no status (and no status subresource).
func prepareServiceAccountForStatusUpdate(sa, old *corev1.ServiceAccount) {
	sa.Secrets, sa.ImagePullSecrets = old.Secrets, old.ImagePullSecrets
	sa.AutomountServiceAccountToken = old.AutomountServiceAccountToken
	sa.Generation = old.Generation
}

// validateServiceAccount checks the metadata only, as Kubernetes does:
// the secrets it lists may not exist yet.
func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	return validateMeta(&sa.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
}

func validateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	return validateMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta)
}

var serviceAccountColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Secrets", "string", corev1.ServiceAccount{}.SwaggerDoc()["secrets"], false),
	ageColumn(),
}

func serviceAccountRow(sa *corev1.ServiceAccount, now time.Time) []interface{} {
	return []interface{}{sa.Name, int64(len(sa.Secrets)), since(sa.CreationTimestamp.Time, now)}
}
