package rbac_test

import (
	"context"
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/rbac"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// BenchmarkAuthorize decides requests of a service account against 1,000
// RoleBindings in 100 namespaces (10 each, to other accounts but one),
// plus the bootstrap ClusterRoleBindings, loaded from a real store.
func BenchmarkAuthorize(b *testing.B) {
	ctx := context.Background()
	st := storetest.New(b)
	for _, cr := range rbac.ClusterRoles() {
		storeObject(b, st, "clusterroles", cr)
	}
	for _, crb := range rbac.ClusterRoleBindings() {
		storeObject(b, st, "clusterrolebindings", crb)
	}
	storeObject(b, st, "clusterroles", &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}},
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"configmaps", "pods", "services"}},
		}})
	for i := range 1000 {
		ns := fmt.Sprintf("ns-%d", i/10)
		sa := fmt.Sprintf("sa-%d", i%10)
		storeObject(b, st, "rolebindings", &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rb-" + sa},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa}, {Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "user-" + sa}}})
	}
	z := rbac.New(st, nil)
	if err := z.Load(ctx); err != nil {
		b.Fatal(err)
	}
	u := auth.ServiceAccountUser("ns-57", "sa-7", "uid")
	u.Groups = append(u.Groups, auth.GroupAuthenticated)
	cases := []struct {
		name string
		a    auth.Attributes
		want bool
	}{
		{"allowed", auth.Attributes{Verb: "list", Resource: "pods", Namespace: "ns-57"}, true},
		{"denied", auth.Attributes{Verb: "delete", Resource: "secrets", Namespace: "ns-57", Name: "s"}, false},
		{"other namespace", auth.Attributes{Verb: "list", Resource: "pods", Namespace: "ns-58"}, false},
	}
	for _, c := range cases {
		if got, _ := z.Authorize(ctx, u, c.a); got != c.want {
			b.Fatalf("%s: Authorize = %v, want %v", c.name, got, c.want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				z.Authorize(ctx, u, c.a)
			}
		})
	}
}

// storeObject writes obj, an object of resource, to st as the API server
// stores it.
func storeObject(b *testing.B, st store.Store, resource string, obj runtime.Object) {
	b.Helper()
	res, _ := registry.LookupIn(registry.GroupRBAC, resource)
	m := obj.(metav1.Object)
	key := "/registry/" + resource + "/" + m.GetName()
	if m.GetNamespace() != "" {
		key = "/registry/" + resource + "/" + m.GetNamespace() + "/" + m.GetName()
	}
	v, err := registry.EncodeStored(res, obj)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Create(context.Background(), key, v); err != nil {
		b.Fatal(err)
	}
}
