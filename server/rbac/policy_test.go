package rbac_test

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/rbac"
)

func TestExtensionAuthenticationReader(t *testing.T) {
	e := newEnv(t)
	roles := e.admin.RbacV1().Roles(metav1.NamespaceSystem)
	role, err := roles.Get(e.ctx, "extension-apiserver-authentication-reader", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("bootstrap role: %v", err)
	}
	// A rule taken away is put back.
	role.Rules = nil
	if _, err := roles.Update(e.ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rbac.Reconcile(e.ctx, e.admin.RbacV1()); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	e.bind(metav1.NamespaceSystem, "webhook-reads-auth", "Role", "extension-apiserver-authentication-reader",
		rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "webhook", Namespace: "team"})
	sa := auth.ServiceAccountUser("team", "webhook", "uid")
	read := res("get", "", "configmaps", "", metav1.NamespaceSystem, rbac.ExtensionAuthenticationConfigMap)
	e.waitAllowed(sa, read, true)
	for _, tc := range []struct {
		name string
		a    auth.Attributes
	}{
		{"another configmap", res("get", "", "configmaps", "", metav1.NamespaceSystem, "other")},
		{"writing it", res("update", "", "configmaps", "", metav1.NamespaceSystem, rbac.ExtensionAuthenticationConfigMap)},
		{"in another namespace", res("get", "", "configmaps", "", "team", rbac.ExtensionAuthenticationConfigMap)},
	} {
		if ok, _ := e.z.Authorize(e.ctx, sa, tc.a); ok {
			t.Errorf("%s: allowed, want denied", tc.name)
		}
	}
}
