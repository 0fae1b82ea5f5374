package registry

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupCoordination is the API group of Lease.
const GroupCoordination = "coordination.k8s.io"

var leaseResource = newLeaseResource()

func newLeaseResource() *Resource {
	r := &Resource{
		Name:       "leases",
		Singular:   "lease",
		Kind:       "Lease",
		Group:      GroupCoordination,
		Namespaced: true,

		New:     func() runtime.Object { return &coordinationv1.Lease{} },
		NewList: func() runtime.Object { return &coordinationv1.LeaseList{} },

		PrepareForCreate:       mutate(func(*coordinationv1.Lease) {}),
		PrepareForUpdate:       mutatePair(func(l, old *coordinationv1.Lease) { l.Generation = old.Generation }),
		PrepareForStatusUpdate: mutatePair(prepareLeaseForStatusUpdate),

		ValidateCreate:       check(validateLease),
		ValidateUpdate:       checkPair(validateLeaseUpdate),
		ValidateStatusUpdate: checkPair(validateLeaseUpdate),

		FieldSet: selectable(func(l *coordinationv1.Lease) fields.Set { return metaFields(&l.ObjectMeta, nil) }),
		Columns:  leaseColumns,
		Row:      printable(leaseRow),
	}
	notScalable(r)
	return r
}

// prepareLeaseForStatusUpdate keeps everything but metadata: leases have
// no status subresource.
func prepareLeaseForStatusUpdate(l, old *coordinationv1.Lease) {
	l.Spec = old.Spec
	l.Generation = old.Generation
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	errs := validateMeta(&l.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateLeaseSpec(&l.Spec)...)
}

func validateLeaseUpdate(l, old *coordinationv1.Lease) field.ErrorList {
	errs := validateMetaUpdate(&l.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateLeaseSpec(&l.Spec)...)
}

// validateLeaseSpec checks the spec as Kubernetes does: a positive
// duration, non-negative transitions, a known strategy, and a preferred
// holder only with a strategy.
func validateLeaseSpec(s *coordinationv1.LeaseSpec) field.ErrorList {
	var errs field.ErrorList
	if d := s.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	if n := s.LeaseTransitions; n != nil && *n < 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseTransitions"), *n, "must be greater than or equal to 0"))
	}
	if s.Strategy != nil {
		errs = append(errs, validateEnum(*s.Strategy, specPath.Child("strategy"), coordinationv1.OldestEmulationVersion)...)
	}
	if s.PreferredHolder != nil && *s.PreferredHolder != "" && (s.Strategy == nil || *s.Strategy == "") {
		errs = append(errs, field.Forbidden(specPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

var leaseColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"], false),
	ageColumn(),
}

func leaseRow(l *coordinationv1.Lease, now time.Time) []interface{} {
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return []interface{}{l.Name, holder, since(l.CreationTimestamp.Time, now)}
}
