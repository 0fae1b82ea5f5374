package rbac

import (
	"context"
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/auth"
)

// Admit prevents privilege escalation through the RBAC API, as
// Kubernetes does. A user who creates or updates a Role or ClusterRole
// must hold every permission it grants (in the Role's namespace, or
// cluster-wide for a ClusterRole), or be allowed the verb "escalate" on
// it. A user who creates or updates a binding must hold every permission
// of the role it refers to, in the binding's namespace, or be allowed the
// verb "bind" on that role. Group system:masters may do both. Other
// writes pass. Admit does not change obj or old.
func (z *Authorizer) Admit(ctx context.Context, u auth.User, a auth.Attributes, obj, _ runtime.Object) (bool, string) {
	if a.APIGroup != rbacv1.GroupName || a.Subresource != "" || u.InGroup(auth.GroupMasters) {
		return true, "no escalation check applies"
	}
	switch o := obj.(type) {
	case *rbacv1.Role:
		return z.admitRole(ctx, u, a, "roles", o.Namespace, o.Name, o.Rules)
	case *rbacv1.ClusterRole:
		return z.admitRole(ctx, u, a, "clusterroles", "", o.Name, o.Rules)
	case *rbacv1.RoleBinding:
		return z.admitBinding(ctx, u, o.Namespace, o.RoleRef)
	case *rbacv1.ClusterRoleBinding:
		return z.admitBinding(ctx, u, "", o.RoleRef)
	}
	return true, "no escalation check applies"
}

func (z *Authorizer) admitRole(ctx context.Context, u auth.User, a auth.Attributes, resource, namespace, name string, rules []rbacv1.PolicyRule) (bool, string) {
	escalate := auth.Attributes{Verb: "escalate", APIGroup: rbacv1.GroupName, Resource: resource, Namespace: namespace, Name: name}
	if ok, _ := z.Authorize(ctx, u, escalate); ok {
		return true, "user may escalate"
	}
	if err := z.confirmNoEscalation(u, namespace, rules); err != "" {
		return false, err
	}
	return true, "user holds every permission the role grants"
}

func (z *Authorizer) admitBinding(ctx context.Context, u auth.User, namespace string, ref rbacv1.RoleRef) (bool, string) {
	resource := "clusterroles"
	if ref.Kind == "Role" {
		resource = "roles"
	}
	bind := auth.Attributes{Verb: "bind", APIGroup: rbacv1.GroupName, Resource: resource, Namespace: namespace, Name: ref.Name}
	if ok, _ := z.Authorize(ctx, u, bind); ok {
		return true, "user may bind the role"
	}
	rules, ok := z.roleRules(namespace, ref)
	if !ok {
		return false, fmt.Sprintf("%s %q referred to by the binding does not exist, and the user may not bind it", ref.Kind, ref.Name)
	}
	if err := z.confirmNoEscalation(u, namespace, rules); err != "" {
		return false, err
	}
	return true, "user holds every permission of the role"
}

// confirmNoEscalation returns "" if u holds every permission of rules in
// namespace, else a message listing what u lacks, worded as Kubernetes'.
func (z *Authorizer) confirmNoEscalation(u auth.User, namespace string, rules []rbacv1.PolicyRule) string {
	owned, _ := z.RulesFor(u, namespace)
	var missing []string
	for _, r := range rules {
		for _, m := range covers(owned, r) {
			missing = append(missing, formatRule(m))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s",
		u.Name, u.Groups, strings.Join(missing, "\n"))
}
