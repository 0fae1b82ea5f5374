package registry

import (
	"time"

	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupStorageMigration is the API group of StorageVersionMigration.
// minik keeps these objects, with Kubernetes' validation, for a migrator
// that acts on them; it runs none itself (every kind is stored in the one
// version it is served in, or converted on read).
const GroupStorageMigration = "storagemigration.k8s.io"

var storageVersionMigrationResource = newStorageVersionMigrationResource()

func newStorageVersionMigrationResource() *Resource {
	r := &Resource{
		Name: "storageversionmigrations", Singular: "storageversionmigration", Kind: "StorageVersionMigration",
		Group: GroupStorageMigration, HasStatus: true,
		New:     func() runtime.Object { return &storagemigrationv1.StorageVersionMigration{} },
		NewList: func() runtime.Object { return &storagemigrationv1.StorageVersionMigrationList{} },

		PrepareForCreate: mutate(func(m *storagemigrationv1.StorageVersionMigration) {
			m.Status = storagemigrationv1.StorageVersionMigrationStatus{}
		}),
		PrepareForUpdate: mutatePair(func(m, old *storagemigrationv1.StorageVersionMigration) {
			m.Status = old.Status
			nextGeneration(&m.ObjectMeta, &old.ObjectMeta, m.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(m, old *storagemigrationv1.StorageVersionMigration) {
			m.Spec = old.Spec
			m.Generation = old.Generation
		}),

		ValidateCreate: check(validateStorageVersionMigration),
		ValidateUpdate: checkPair(func(m, old *storagemigrationv1.StorageVersionMigration) field.ErrorList {
			errs := validateMetaUpdate(&m.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateStorageVersionMigration(m)...)
			return immutable(errs, field.NewPath("spec"), m.Spec, old.Spec)
		}),
		ValidateStatusUpdate: checkPair(validateStorageVersionMigrationStatus),

		FieldSet: selectable(func(m *storagemigrationv1.StorageVersionMigration) fields.Set { return metaFields(&m.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Resource", "string", storagemigrationv1.StorageVersionMigrationSpec{}.SwaggerDoc()["resource"], false),
			ageColumn(),
		},
		Row: printable(func(m *storagemigrationv1.StorageVersionMigration, now time.Time) []interface{} {
			return []interface{}{m.Name, m.Spec.Resource.String(), since(m.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// validateStorageVersionMigration checks a migration as Kubernetes does:
// a resource named as a DNS-1035 label, in a group named as a DNS
// subdomain.
func validateStorageVersionMigration(m *storagemigrationv1.StorageVersionMigration) field.ErrorList {
	errs := validateMeta(&m.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	res := field.NewPath("spec", "resource")
	if r := m.Spec.Resource.Resource; r == "" {
		errs = append(errs, field.Required(res.Child("resource"), "resource is required to be set"))
	} else {
		for _, msg := range validation.IsDNS1035Label(r) {
			errs = append(errs, field.Invalid(res.Child("resource"), r, msg))
		}
	}
	if g := m.Spec.Resource.Group; g != "" {
		for _, msg := range validation.IsDNS1123Subdomain(g) {
			errs = append(errs, field.Invalid(res.Child("group"), g, msg))
		}
	}
	return errs
}

// validateStorageVersionMigrationStatus checks a status write: valid
// conditions, a well-formed resourceVersion that does not change once
// set, and an
// outcome (Succeeded or Failed) that, once true, stays true and alone.
func validateStorageVersionMigrationStatus(m, old *storagemigrationv1.StorageVersionMigration) field.ErrorList {
	errs := validateMetaUpdate(&m.ObjectMeta, &old.ObjectMeta)
	p := field.NewPath("status")
	errs = append(errs, metavalidation.ValidateConditions(m.Status.Conditions, p.Child("conditions"))...)
	if rv := m.Status.ResourceVersion; rv != "" {
		if _, err := resourceversion.CompareResourceVersion(rv, rv); err != nil {
			errs = append(errs, field.Invalid(p.Child("resourceVersion"), rv, err.Error()))
		}
	}
	if old.Status.ResourceVersion != "" && m.Status.ResourceVersion != old.Status.ResourceVersion {
		errs = append(errs, field.Invalid(p.Child("resourceVersion"), m.Status.ResourceVersion, apivalidation.FieldImmutableErrorMsg))
	}
	succeeded := func(s *storagemigrationv1.StorageVersionMigration) bool {
		return meta.IsStatusConditionTrue(s.Status.Conditions, string(storagemigrationv1.MigrationSucceeded))
	}
	failed := func(s *storagemigrationv1.StorageVersionMigration) bool {
		return meta.IsStatusConditionTrue(s.Status.Conditions, string(storagemigrationv1.MigrationFailed))
	}
	conds := p.Child("conditions")
	if succeeded(m) && failed(m) {
		errs = append(errs, field.Invalid(conds, m.Status.Conditions, "Succeeded and Failed cannot both be true"))
	}
	if succeeded(old) && !succeeded(m) {
		errs = append(errs, field.Invalid(conds, m.Status.Conditions, "Succeeded cannot be set to false once it is true"))
	}
	if failed(old) && !failed(m) {
		errs = append(errs, field.Invalid(conds, m.Status.Conditions, "Failed cannot be set to false once it is true"))
	}
	return errs
}
