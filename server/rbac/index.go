package rbac

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// subject is a binding subject as the index keys it: a user name (also
// for service accounts, as system:serviceaccount:NS:NAME) or a group.
type subject struct {
	group bool
	name  string
}

// binding is what the index keeps of a RoleBinding (namespace set) or a
// ClusterRoleBinding.
type binding struct {
	namespace, name    string
	roleKind, roleName string
	subjects           []subject
	// reasons are the reasons of a decision this binding allows, one per
	// subject, made once here rather than on every decision.
	reasons []string
}

// reason is the reason of a decision b allows for subject s.
func (b *binding) reason(s subject) string {
	for i, have := range b.subjects {
		if have == s {
			return b.reasons[i]
		}
	}
	return "RBAC: allowed by " + b.kind() + " " + strconv.Quote(b.name)
}

// kind is the binding's kind, for reasons and messages.
func (b *binding) kind() string {
	if b.namespace == "" {
		return "ClusterRoleBinding"
	}
	return "RoleBinding"
}

// index holds the roles and bindings of the cluster, bindings looked up
// by subject: a decision costs a few map lookups per group of the user,
// however many bindings there are. An index is not safe for concurrent
// use; Authorizer guards it.
type index struct {
	clusterRoles map[string][]rbacv1.PolicyRule            // name → rules
	roles        map[string]map[string][]rbacv1.PolicyRule // namespace → name → rules
	bindings     map[string]*binding                       // "NS/NAME" or "/NAME" → binding
	cluster      map[subject][]*binding                    // subject → its ClusterRoleBindings
	namespaced   map[string]map[subject][]*binding         // namespace → subject → its RoleBindings
}

func newIndex() *index {
	return &index{
		clusterRoles: map[string][]rbacv1.PolicyRule{},
		roles:        map[string]map[string][]rbacv1.PolicyRule{},
		bindings:     map[string]*binding{},
		cluster:      map[subject][]*binding{},
		namespaced:   map[string]map[subject][]*binding{},
	}
}

// setRole records (rules non-nil or empty) or, with remove, forgets the
// rules of Role namespace/name, or of ClusterRole name when namespace is "".
func (x *index) setRole(namespace, name string, rules []rbacv1.PolicyRule, remove bool) {
	if namespace == "" {
		if remove {
			delete(x.clusterRoles, name)
		} else {
			x.clusterRoles[name] = rules
		}
		return
	}
	m := x.roles[namespace]
	if remove {
		delete(m, name)
		if len(m) == 0 {
			delete(x.roles, namespace)
		}
		return
	}
	if m == nil {
		m = map[string][]rbacv1.PolicyRule{}
		x.roles[namespace] = m
	}
	m[name] = rules
}

// setBinding records b, replacing any binding of the same namespace and
// name.
func (x *index) setBinding(b *binding) {
	x.removeBinding(b.namespace, b.name)
	x.bindings[b.namespace+"/"+b.name] = b
	bySubject := x.cluster
	if b.namespace != "" {
		bySubject = x.namespaced[b.namespace]
		if bySubject == nil {
			bySubject = map[subject][]*binding{}
			x.namespaced[b.namespace] = bySubject
		}
	}
	for _, s := range b.subjects {
		if !slices.Contains(bySubject[s], b) {
			bySubject[s] = append(bySubject[s], b)
		}
	}
}

// removeBinding forgets the binding namespace/name, if known.
func (x *index) removeBinding(namespace, name string) {
	key := namespace + "/" + name
	b, ok := x.bindings[key]
	if !ok {
		return
	}
	delete(x.bindings, key)
	bySubject := x.cluster
	if namespace != "" {
		bySubject = x.namespaced[namespace]
	}
	for _, s := range b.subjects {
		list := slices.DeleteFunc(slices.Clone(bySubject[s]), func(o *binding) bool { return o == b })
		if len(list) == 0 {
			delete(bySubject, s)
		} else {
			bySubject[s] = list
		}
	}
	if namespace != "" && len(bySubject) == 0 {
		delete(x.namespaced, namespace)
	}
}

// rulesOf returns the rules of the role b refers to; ok is false when
// that role does not exist.
func (x *index) rulesOf(b *binding) (rules []rbacv1.PolicyRule, ok bool) {
	if b.roleKind == "Role" {
		rules, ok = x.roles[b.namespace][b.roleName]
		return rules, ok
	}
	rules, ok = x.clusterRoles[b.roleName]
	return rules, ok
}

// newBinding returns the index's form of a binding in namespace ("" for a
// ClusterRoleBinding). A ServiceAccount subject without a namespace is in
// the binding's.
func newBinding(namespace, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) *binding {
	b := &binding{namespace: namespace, name: name, roleKind: ref.Kind, roleName: ref.Name}
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			b.subjects = append(b.subjects, subject{name: s.Name})
		case rbacv1.GroupKind:
			b.subjects = append(b.subjects, subject{group: true, name: s.Name})
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = namespace
			}
			if ns != "" && s.Name != "" {
				b.subjects = append(b.subjects, subject{name: serviceAccountUser(ns, s.Name)})
			}
		}
	}
	for _, s := range b.subjects {
		kind := "User"
		if s.group {
			kind = "Group"
		}
		b.reasons = append(b.reasons, fmt.Sprintf("RBAC: allowed by %s %q of %s %q to %s %q", b.kind(), b.name, b.roleKind, b.roleName, kind, s.name))
	}
	return b
}

func serviceAccountUser(namespace, name string) string {
	return strings.Join([]string{"system:serviceaccount", namespace, name}, ":")
}
