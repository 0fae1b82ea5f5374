package auth

import "fmt"

// authorizeServiceAccount applies the interim rule for service accounts
// (user system:serviceaccount:NS:NAME), which minik has until it serves
// RBAC: a service account may get, list and watch the objects of its own
// namespace, except Secrets, and their status; nothing else. That is what
// a typical in-cluster client (an informer over its namespace's pods,
// services or configmaps) needs, and it hands out no credentials: the
// Secrets of the namespace, other namespaces and every write stay closed.
//
// TODO(rbac): replace with the roles and bindings of
// rbac.authorization.k8s.io once minik serves them.
func authorizeServiceAccount(namespace string, a Attributes) (bool, string) {
	switch {
	case !readVerbs[a.Verb]:
		return false, fmt.Sprintf("service accounts may only get, list and watch, not %s", a.Verb)
	case a.Namespace != namespace:
		return false, fmt.Sprintf("service accounts may read only their own namespace %q", namespace)
	case a.Resource == "secrets":
		return false, "service accounts may not read secrets"
	case a.Subresource != "" && a.Subresource != "status":
		return false, fmt.Sprintf("service accounts may not read the %s subresource", a.Subresource)
	}
	return true, "service accounts may read their own namespace"
}
