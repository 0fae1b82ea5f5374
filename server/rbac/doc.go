// Package rbac authorizes requests by the roles and bindings of
// rbac.authorization.k8s.io/v1, as Kubernetes' RBAC authorizer does.
//
// # Index
//
// An [Authorizer] keeps every Role, ClusterRole, RoleBinding and
// ClusterRoleBinding in memory, filled by [Authorizer.Load] and kept by
// [Authorizer.Run] from the store's watch of their keys. Bindings are
// looked up by subject (a user name, service accounts included as
// system:serviceaccount:NS:NAME, or a group), so a decision costs a few
// map lookups per group of the user whatever the number of bindings:
//
//	ClusterRoleBindings of the user or its groups → ClusterRole rules
//	RoleBindings in the request's namespace       → Role or ClusterRole rules
//
// A rule allows a request when its verbs, API groups, resources
// ("pods", "pods/log", "*/scale", "*") and resource names (none = all)
// match, or for a non-resource request its verbs and URLs ("/apis/*").
// RBAC only allows: what no binding grants is denied.
//
// # Escalation
//
// [Authorizer.Admit] refuses a Role or ClusterRole that grants what its
// writer does not hold, unless the writer may "escalate" it, and a
// binding to a role whose permissions its writer does not hold, unless
// the writer may "bind" that role.
//
// # Bootstrap policy
//
// [ClusterRoles] and [ClusterRoleBindings] are the policy a cluster
// starts with (cluster-admin, admin, edit, view and their aggregation,
// system:discovery, system:basic-user, system:public-info-viewer, …);
// [Reconcile] writes it at server start, keeping what users added.
package rbac
