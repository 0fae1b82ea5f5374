package registry

import (
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupRBAC is the API group of Role, ClusterRole, RoleBinding and
// ClusterRoleBinding.
const GroupRBAC = rbacv1.GroupName

var (
	rulesPath    = field.NewPath("rules")
	roleRefPath  = field.NewPath("roleRef")
	subjectsPath = field.NewPath("subjects")
)

var roleResource = rbacResource(&Resource{
	Name: "roles", Singular: "role", Kind: "Role", Namespaced: true,
	New:     func() runtime.Object { return &rbacv1.Role{} },
	NewList: func() runtime.Object { return &rbacv1.RoleList{} },

	PrepareForCreate: mutate(func(*rbacv1.Role) {}),
	PrepareForUpdate: mutatePair(keepGeneration[*rbacv1.Role]),
	ValidateCreate:   check(validateRole),
	ValidateUpdate: checkPair(func(r, old *rbacv1.Role) field.ErrorList {
		return append(validateMetaUpdate(&r.ObjectMeta, &old.ObjectMeta), validateRules(r.Rules, true)...)
	}),
	FieldSet: selectable(func(r *rbacv1.Role) fields.Set { return metaFields(&r.ObjectMeta, nil) }),
	Columns:  roleColumns,
	Row:      printable(func(r *rbacv1.Role, _ time.Time) []interface{} { return roleRow(&r.ObjectMeta) }),
})

var clusterRoleResource = rbacResource(&Resource{
	Name: "clusterroles", Singular: "clusterrole", Kind: "ClusterRole",
	New:     func() runtime.Object { return &rbacv1.ClusterRole{} },
	NewList: func() runtime.Object { return &rbacv1.ClusterRoleList{} },

	PrepareForCreate: mutate(func(*rbacv1.ClusterRole) {}),
	PrepareForUpdate: mutatePair(keepGeneration[*rbacv1.ClusterRole]),
	ValidateCreate:   check(validateClusterRole),
	ValidateUpdate: checkPair(func(r, old *rbacv1.ClusterRole) field.ErrorList {
		return append(validateMetaUpdate(&r.ObjectMeta, &old.ObjectMeta), validateClusterRoleSpec(r)...)
	}),
	FieldSet: selectable(func(r *rbacv1.ClusterRole) fields.Set { return metaFields(&r.ObjectMeta, nil) }),
	Columns:  roleColumns,
	Row:      printable(func(r *rbacv1.ClusterRole, _ time.Time) []interface{} { return roleRow(&r.ObjectMeta) }),
})

var roleBindingResource = rbacResource(&Resource{
	Name: "rolebindings", Singular: "rolebinding", Kind: "RoleBinding", Namespaced: true,
	New:     func() runtime.Object { return &rbacv1.RoleBinding{} },
	NewList: func() runtime.Object { return &rbacv1.RoleBindingList{} },

	PrepareForCreate: mutate(func(b *rbacv1.RoleBinding) { defaultRoleBinding(&b.RoleRef, b.Subjects) }),
	PrepareForUpdate: mutatePair(func(b, old *rbacv1.RoleBinding) {
		defaultRoleBinding(&b.RoleRef, b.Subjects)
		b.Generation = old.Generation
	}),
	ValidateCreate: check(func(b *rbacv1.RoleBinding) field.ErrorList {
		errs := validateMeta(&b.ObjectMeta, true, validateRBACName)
		return append(errs, validateBinding(b.RoleRef, b.Subjects, true)...)
	}),
	ValidateUpdate: checkPair(func(b, old *rbacv1.RoleBinding) field.ErrorList {
		errs := validateMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)
		errs = append(errs, validateBinding(b.RoleRef, b.Subjects, true)...)
		return append(errs, validateRoleRefUpdate(b.RoleRef, old.RoleRef)...)
	}),
	FieldSet: selectable(func(b *rbacv1.RoleBinding) fields.Set { return metaFields(&b.ObjectMeta, nil) }),
	Columns:  bindingColumns,
	Row: printable(func(b *rbacv1.RoleBinding, now time.Time) []interface{} {
		return bindingRow(&b.ObjectMeta, b.RoleRef, b.Subjects, now)
	}),
})

var clusterRoleBindingResource = rbacResource(&Resource{
	Name: "clusterrolebindings", Singular: "clusterrolebinding", Kind: "ClusterRoleBinding",
	New:     func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
	NewList: func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} },

	PrepareForCreate: mutate(func(b *rbacv1.ClusterRoleBinding) { defaultRoleBinding(&b.RoleRef, b.Subjects) }),
	PrepareForUpdate: mutatePair(func(b, old *rbacv1.ClusterRoleBinding) {
		defaultRoleBinding(&b.RoleRef, b.Subjects)
		b.Generation = old.Generation
	}),
	ValidateCreate: check(func(b *rbacv1.ClusterRoleBinding) field.ErrorList {
		errs := validateMeta(&b.ObjectMeta, false, validateRBACName)
		return append(errs, validateBinding(b.RoleRef, b.Subjects, false)...)
	}),
	ValidateUpdate: checkPair(func(b, old *rbacv1.ClusterRoleBinding) field.ErrorList {
		errs := validateMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)
		errs = append(errs, validateBinding(b.RoleRef, b.Subjects, false)...)
		return append(errs, validateRoleRefUpdate(b.RoleRef, old.RoleRef)...)
	}),
	FieldSet: selectable(func(b *rbacv1.ClusterRoleBinding) fields.Set { return metaFields(&b.ObjectMeta, nil) }),
	Columns:  bindingColumns,
	Row: printable(func(b *rbacv1.ClusterRoleBinding, now time.Time) []interface{} {
		return bindingRow(&b.ObjectMeta, b.RoleRef, b.Subjects, now)
	}),
})

// rbacResource completes the declaration of an RBAC kind. None has a
// status subresource, so the API server never makes a status write.
func rbacResource(r *Resource) *Resource {
	r.Group = GroupRBAC
	notScalable(r)
	r.PrepareForStatusUpdate = func(obj, old runtime.Object) {}
	r.ValidateStatusUpdate = func(obj, old runtime.Object) field.ErrorList {
		return r.ValidateUpdate(obj, old)
	}
	return r
}

// validateRBACName accepts what Kubernetes accepts as the name of an RBAC
// object: any path segment ("system:node-proxier" included).
func validateRBACName(name string, prefix bool) []string {
	return path.IsValidPathSegmentName(name)
}

func validateRole(r *rbacv1.Role) field.ErrorList {
	errs := validateMeta(&r.ObjectMeta, true, validateRBACName)
	return append(errs, validateRules(r.Rules, true)...)
}

func validateClusterRole(r *rbacv1.ClusterRole) field.ErrorList {
	errs := validateMeta(&r.ObjectMeta, false, validateRBACName)
	return append(errs, validateClusterRoleSpec(r)...)
}

// validateClusterRoleSpec checks the rules and the aggregation rule: at
// least one selector, each a valid label selector.
func validateClusterRoleSpec(r *rbacv1.ClusterRole) field.ErrorList {
	errs := validateRules(r.Rules, false)
	if ag := r.AggregationRule; ag != nil {
		p := field.NewPath("aggregationRule", "clusterRoleSelectors")
		if len(ag.ClusterRoleSelectors) == 0 {
			errs = append(errs, field.Required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
		}
		for i := range ag.ClusterRoleSelectors {
			errs = append(errs, metavalidation.ValidateLabelSelector(&ag.ClusterRoleSelectors[i], metavalidation.LabelSelectorValidationOptions{}, p.Index(i))...)
		}
	}
	return errs
}

// validateRules checks each policy rule as Kubernetes does: verbs are
// required; a rule names either non-resource URLs (never in a namespaced
// Role) or API groups and resources.
func validateRules(rules []rbacv1.PolicyRule, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	for i, rule := range rules {
		p := rulesPath.Index(i)
		if len(rule.Verbs) == 0 {
			errs = append(errs, field.Required(p.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(rule.NonResourceURLs) > 0 {
			if namespaced {
				errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
			}
			if len(rule.APIGroups) > 0 || len(rule.Resources) > 0 || len(rule.ResourceNames) > 0 {
				errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
			}
			continue
		}
		if len(rule.APIGroups) == 0 {
			errs = append(errs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(rule.Resources) == 0 {
			errs = append(errs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
		}
	}
	return errs
}

// defaultRoleBinding fills the API groups Kubernetes defaults: the roleRef's,
// and a User or Group subject's.
func defaultRoleBinding(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = GroupRBAC
	}
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup == "" && (s.Kind == rbacv1.UserKind || s.Kind == rbacv1.GroupKind) {
			s.APIGroup = GroupRBAC
		}
	}
}

// validateBinding checks a binding's roleRef and subjects; a
// ClusterRoleBinding (namespaced false) may refer only to a ClusterRole,
// and its ServiceAccount subjects must name their namespace.
func validateBinding(ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	if ref.APIGroup != GroupRBAC {
		errs = append(errs, field.NotSupported(roleRefPath.Child("apiGroup"), ref.APIGroup, []string{GroupRBAC}))
	}
	kinds := []string{"ClusterRole"}
	if namespaced {
		kinds = []string{"ClusterRole", "Role"}
	}
	if !containsString(kinds, ref.Kind) {
		errs = append(errs, field.NotSupported(roleRefPath.Child("kind"), ref.Kind, kinds))
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(roleRefPath.Child("name"), ""))
	} else {
		errs = append(errs, messages(roleRefPath.Child("name"), ref.Name, validateRBACName(ref.Name, false))...)
	}
	for i, s := range subjects {
		errs = append(errs, validateSubject(s, namespaced, subjectsPath.Index(i))...)
	}
	return errs
}

func validateSubject(s rbacv1.Subject, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Name != "" {
			errs = append(errs, messages(p.Child("name"), s.Name, apivalidation.ValidateServiceAccountName(s.Name, false))...)
		}
		if s.APIGroup != "" {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{""}))
		}
		if !namespaced && s.Namespace == "" {
			errs = append(errs, field.Required(p.Child("namespace"), ""))
		}
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup != GroupRBAC {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{GroupRBAC}))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
	}
	return errs
}

// validateRoleRefUpdate keeps a binding's roleRef: to bind another role,
// a client deletes the binding and creates a new one.
func validateRoleRefUpdate(ref, old rbacv1.RoleRef) field.ErrorList {
	if apiequality.Semantic.DeepEqual(ref, old) {
		return nil
	}
	return field.ErrorList{field.Invalid(roleRefPath, ref, "cannot change roleRef")}
}

func containsString(list []string, s string) bool {
	for _, it := range list {
		if it == s {
			return true
		}
	}
	return false
}

var roleColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Created At", "date", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"], false),
}

func roleRow(m *metav1.ObjectMeta) []interface{} {
	return []interface{}{m.Name, m.CreationTimestamp.UTC().Format(time.RFC3339)}
}

var bindingColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Role", "string", rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"], false),
	ageColumn(),
	column("Users", "string", "Users in the roleBinding", true),
	column("Groups", "string", "Groups in the roleBinding", true),
	column("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", true),
}

// bindingRow prints a binding as kubectl does: the role as KIND/NAME and,
// wide, its users, groups and service accounts (NAMESPACE/NAME).
func bindingRow(m *metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject, now time.Time) []interface{} {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			if s.Namespace != "" {
				sas = append(sas, s.Namespace+"/"+s.Name)
			} else {
				sas = append(sas, s.Name)
			}
		}
	}
	return []interface{}{
		m.Name, ref.Kind + "/" + ref.Name, since(m.CreationTimestamp.Time, now),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "),
	}
}
