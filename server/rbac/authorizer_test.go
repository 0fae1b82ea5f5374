package rbac_test

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/auth"
)

func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	e.namespace("team")
	e.namespace("other")
	core := []string{""}
	e.createClusterRole("pod-reader", rule([]string{"get", "list", "watch"}, core, "pods"))
	e.createClusterRole("log-reader", rule([]string{"get"}, core, "pods/log"))
	e.createClusterRole("scaler", rule([]string{"update"}, []string{"*"}, "*/scale"))
	e.createClusterRole("one-config", rbacv1.PolicyRule{Verbs: []string{"get", "update"}, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"app"}})
	e.createClusterRole("metrics", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics", "/logs/*"}})
	e.createRole("team", "secret-writer", rule([]string{"*"}, core, "secrets"))
	e.bind("team", "alice-pods", "ClusterRole", "pod-reader", user("alice"))
	e.bind("team", "devs-logs", "ClusterRole", "log-reader", group("devs"))
	e.bind("team", "sa-secrets", "Role", "secret-writer", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder"})
	e.bind("other", "builder-pods", "ClusterRole", "pod-reader", serviceAccount("team", "builder"))
	e.bind("", "ops-scale", "ClusterRole", "scaler", group("ops"))
	e.bind("", "carol-config", "ClusterRole", "one-config", user("carol"))
	e.bind("", "monitoring", "ClusterRole", "metrics", group("monitoring"))
	last := auth.User{Name: "x", Groups: []string{"monitoring"}}
	e.waitAllowed(last, auth.Attributes{Verb: "get", Path: "/metrics"}, true)

	alice := auth.User{Name: "alice", Groups: []string{auth.GroupAuthenticated}}
	dev := auth.User{Name: "bob", Groups: []string{"devs", auth.GroupAuthenticated}}
	builder := auth.ServiceAccountUser("team", "builder", "uid")
	builder.Groups = append(builder.Groups, auth.GroupAuthenticated)
	ops := auth.User{Name: "dan", Groups: []string{"ops"}}
	carol := auth.User{Name: "carol"}
	mon := auth.User{Name: "eve", Groups: []string{"monitoring"}}
	anon := auth.Anonymous
	tests := []struct {
		name string
		u    auth.User
		a    auth.Attributes
		want bool
	}{
		{"user bound in namespace", alice, res("list", "", "pods", "", "team", ""), true},
		{"user named object", alice, res("get", "", "pods", "", "team", "web"), true},
		{"user other verb", alice, res("delete", "", "pods", "", "team", "web"), false},
		{"user other namespace", alice, res("list", "", "pods", "", "other", ""), false},
		{"user all namespaces", alice, res("list", "", "pods", "", "", ""), false},
		{"user subresource not granted", alice, res("get", "", "pods", "log", "team", "web"), false},
		{"user other group", alice, res("list", "apps", "pods", "", "team", ""), false},
		{"group subresource", dev, res("get", "", "pods", "log", "team", "web"), true},
		{"group not the resource", dev, res("get", "", "pods", "", "team", "web"), false},
		{"service account subject defaulted to binding namespace", builder, res("create", "", "secrets", "", "team", ""), true},
		{"service account wildcard verb", builder, res("deletecollection", "", "secrets", "", "team", ""), true},
		{"service account bound in another namespace", builder, res("watch", "", "pods", "", "other", ""), true},
		{"service account not elsewhere", builder, res("get", "", "secrets", "", "other", "s"), false},
		{"impostor without the group is still the user name", auth.User{Name: builder.Name}, res("get", "", "secrets", "", "team", "s"), true},
		{"cluster binding any namespace", ops, res("update", "apps", "deployments", "scale", "team", "web"), true},
		{"cluster binding wildcard group", ops, res("update", "", "replicationcontrollers", "scale", "other", "rc"), true},
		{"wildcard subresource not the resource", ops, res("update", "apps", "deployments", "", "team", "web"), false},
		{"resource name allowed", carol, res("update", "", "configmaps", "", "team", "app"), true},
		{"resource name other", carol, res("update", "", "configmaps", "", "team", "db"), false},
		{"resource name list", carol, res("list", "", "configmaps", "", "team", ""), false},
		{"non-resource exact", mon, auth.Attributes{Verb: "get", Path: "/metrics"}, true},
		{"non-resource prefix", mon, auth.Attributes{Verb: "get", Path: "/logs/kube.log"}, true},
		{"non-resource other", mon, auth.Attributes{Verb: "get", Path: "/debug"}, false},
		{"non-resource verb", mon, auth.Attributes{Verb: "post", Path: "/metrics"}, false},
		{"bootstrap discovery", alice, auth.Attributes{Verb: "get", Path: "/apis/apps"}, true},
		{"bootstrap basic user", alice, res("create", "authorization.k8s.io", "selfsubjectaccessreviews", "", "", ""), true},
		{"bootstrap public info", anon, auth.Attributes{Verb: "get", Path: "/version"}, true},
		{"anonymous no discovery", anon, auth.Attributes{Verb: "get", Path: "/apis"}, false},
		{"masters through cluster-admin", auth.User{Name: "root", Groups: []string{auth.GroupMasters}}, res("delete", "", "nodes", "", "", "n"), true},
		{"nobody", auth.User{Name: "nobody"}, res("get", "", "pods", "", "team", "web"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := e.z.Authorize(e.ctx, tc.u, tc.a)
			if got != tc.want {
				t.Errorf("Authorize(%q, %+v) = %v (%s), want %v", tc.u.Name, tc.a, got, reason, tc.want)
			}
		})
	}

	// Deleting a binding takes its grant away.
	if err := e.admin.RbacV1().RoleBindings("team").Delete(e.ctx, "alice-pods", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitAllowed(alice, res("list", "", "pods", "", "team", ""), false)
	// Changing a role changes what its bindings grant.
	cr, err := e.admin.RbacV1().ClusterRoles().Get(e.ctx, "log-reader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cr.Rules = append(cr.Rules, rule([]string{"get"}, []string{""}, "pods"))
	if _, err := e.admin.RbacV1().ClusterRoles().Update(e.ctx, cr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitAllowed(dev, res("get", "", "pods", "", "team", "web"), true)
}

// TestServiceAccountHasNothingByDefault: as in Kubernetes, a service
// account may do nothing in its namespace until a binding says so.
func TestServiceAccountHasNothingByDefault(t *testing.T) {
	e := newEnv(t)
	sa := auth.ServiceAccountUser("default", "default", "uid")
	sa.Groups = append(sa.Groups, auth.GroupAuthenticated)
	_, err := e.client(sa).CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list pods as %s: err = %v, want Forbidden", sa.Name, err)
	}
	e.createClusterRole("pod-reader", rule([]string{"list"}, []string{""}, "pods"))
	e.bind("default", "sa-pods", "ClusterRole", "pod-reader", serviceAccount("default", "default"))
	e.waitAllowed(sa, res("list", "", "pods", "", "default", ""), true)
	if _, err := e.client(sa).CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list pods as %s once bound: %v", sa.Name, err)
	}
}

func TestEscalation(t *testing.T) {
	e := newEnv(t)
	e.namespace("team")
	core := []string{""}
	e.createClusterRole("pods-rw", rule([]string{"get", "list", "create", "delete"}, core, "pods"))
	e.createClusterRole("secrets-r", rule([]string{"get"}, core, "secrets"))
	e.createClusterRole("rbac-writer", rule([]string{"create", "update", "get"}, []string{rbacv1.GroupName}, "roles", "rolebindings"))
	e.bind("team", "alice-pods", "ClusterRole", "pods-rw", user("alice"))
	e.bind("team", "alice-rbac", "ClusterRole", "rbac-writer", user("alice"))
	alice := auth.User{Name: "alice", Groups: []string{auth.GroupAuthenticated}}
	e.waitAllowed(alice, res("create", rbacv1.GroupName, "roles", "", "team", ""), true)
	e.waitAllowed(alice, res("create", "", "pods", "", "team", ""), true)
	c := e.client(alice).RbacV1()

	role := func(name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	}
	// A role within what alice holds.
	if _, err := c.Roles("team").Create(e.ctx, role("readers", rule([]string{"get", "list"}, core, "pods")), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a role within alice's permissions: %v", err)
	}
	// A role granting more.
	for _, r := range []rbacv1.PolicyRule{
		rule([]string{"get"}, core, "secrets"),
		rule([]string{"*"}, core, "pods"),
		rule([]string{"get"}, []string{"*"}, "pods"),
	} {
		_, err := c.Roles("team").Create(e.ctx, role("more", r), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "attempting to grant RBAC permissions not currently held") {
			t.Errorf("create role granting %v: err = %v, want Forbidden naming the escalation", r, err)
		}
	}
	// A binding to a role within alice's permissions, and beyond them.
	bob := []rbacv1.Subject{user("bob")}
	rb := func(name, role string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: bob}
	}
	if _, err := c.RoleBindings("team").Create(e.ctx, rb("bob-pods", "pods-rw"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind a role alice holds: %v", err)
	}
	if _, err := c.RoleBindings("team").Create(e.ctx, rb("bob-secrets", "secrets-r"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("bind a role alice lacks: err = %v, want Forbidden", err)
	}
	// The bind and escalate verbs lift the checks.
	e.createClusterRole("binder", rbacv1.PolicyRule{Verbs: []string{"bind"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, ResourceNames: []string{"secrets-r"}})
	e.createClusterRole("escalator", rule([]string{"escalate"}, []string{rbacv1.GroupName}, "roles"))
	e.bind("team", "alice-bind", "ClusterRole", "binder", user("alice"))
	e.bind("team", "alice-escalate", "ClusterRole", "escalator", user("alice"))
	e.waitAllowed(alice, res("escalate", rbacv1.GroupName, "roles", "", "team", "more"), true)
	e.waitAllowed(alice, res("bind", rbacv1.GroupName, "clusterroles", "", "team", "secrets-r"), true)
	if _, err := c.RoleBindings("team").Create(e.ctx, rb("bob-secrets", "secrets-r"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind with the bind verb: %v", err)
	}
	if _, err := c.Roles("team").Create(e.ctx, role("more", rule([]string{"*"}, core, "secrets")), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role with the escalate verb: %v", err)
	}
	// Masters need neither.
	if _, err := e.admin.RbacV1().ClusterRoles().Create(e.ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "all"},
		Rules: []rbacv1.PolicyRule{rule([]string{"*"}, []string{"*"}, "*")}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("masters create a role: %v", err)
	}
}
