package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validClusterRole() *rbacv1.ClusterRole {
	r := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "system:pod-reader"},
		Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}},
			{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics"}},
		},
	}
	clusterRoleResource.PrepareForCreate(r)
	return r
}

func TestValidateClusterRole(t *testing.T) {
	runValidation(t, clusterRoleResource, validClusterRole, []validationCase[*rbacv1.ClusterRole]{
		{name: "valid"},
		{name: "empty verbs", mutate: func(r *rbacv1.ClusterRole) { r.Rules[0].Verbs = nil },
			want: []string{errKey(required, "rules[0].verbs")}},
		{name: "no api groups", mutate: func(r *rbacv1.ClusterRole) { r.Rules[0].APIGroups = nil },
			want: []string{errKey(required, "rules[0].apiGroups")}},
		{name: "no resources", mutate: func(r *rbacv1.ClusterRole) { r.Rules[0].Resources = nil },
			want: []string{errKey(required, "rules[0].resources")}},
		{name: "urls and resources", mutate: func(r *rbacv1.ClusterRole) { r.Rules[1].Resources = []string{"pods"} },
			want: []string{errKey(invalid, "rules[1].nonResourceURLs")}},
		{name: "name with a slash", mutate: func(r *rbacv1.ClusterRole) { r.Name = "a/b" },
			want: []string{errKey(invalid, "metadata.name")}},
		{name: "namespace set", mutate: func(r *rbacv1.ClusterRole) { r.Namespace = "default" },
			want: []string{errKey(forbidden, "metadata.namespace")}},
		{name: "empty aggregation rule", mutate: func(r *rbacv1.ClusterRole) { r.AggregationRule = &rbacv1.AggregationRule{} },
			want: []string{errKey(required, "aggregationRule.clusterRoleSelectors")}},
		{name: "bad aggregation selector", mutate: func(r *rbacv1.ClusterRole) {
			r.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"a b": "x"}}}}
		}, want: []string{errKey(invalid, "aggregationRule.clusterRoleSelectors[0].matchLabels")}},
	})
}

func TestValidateRole(t *testing.T) {
	base := func() *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "default"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	}
	runValidation(t, roleResource, base, []validationCase[*rbacv1.Role]{
		{name: "valid"},
		{name: "no namespace", mutate: func(r *rbacv1.Role) { r.Namespace = "" },
			want: []string{errKey(required, "metadata.namespace")}},
		{name: "non-resource urls", mutate: func(r *rbacv1.Role) {
			r.Rules = append(r.Rules, rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/x"}})
		}, want: []string{errKey(invalid, "rules[1].nonResourceURLs")}},
	})
}

func validRoleBinding() *rbacv1.RoleBinding {
	b := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "readers", Namespace: "default"},
		RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{
			{Kind: "User", Name: "alice"}, {Kind: "Group", Name: "devs"}, {Kind: "ServiceAccount", Name: "builder"},
		},
	}
	roleBindingResource.PrepareForCreate(b)
	return b
}

func TestValidateRoleBinding(t *testing.T) {
	runValidation(t, roleBindingResource, validRoleBinding, []validationCase[*rbacv1.RoleBinding]{
		{name: "valid"},
		{name: "role ref kind", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Kind = "Pod" },
			want: []string{errKey(notSupported, "roleRef.kind")}},
		{name: "role ref group", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.APIGroup = "apps" },
			want: []string{errKey(notSupported, "roleRef.apiGroup")}},
		{name: "role ref name", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Name = "" },
			want: []string{errKey(required, "roleRef.name")}},
		{name: "subject kind", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[0].Kind = "Robot" },
			want: []string{errKey(notSupported, "subjects[0].kind")}},
		{name: "subject name", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[1].Name = "" },
			want: []string{errKey(required, "subjects[1].name")}},
		{name: "service account api group", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[2].APIGroup = "rbac.authorization.k8s.io" },
			want: []string{errKey(notSupported, "subjects[2].apiGroup")}},
		{name: "service account name", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[2].Name = "Bad_Name" },
			want: []string{errKey(invalid, "subjects[2].name")}},
		{name: "user api group", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[0].APIGroup = "x" },
			want: []string{errKey(notSupported, "subjects[0].apiGroup")}},
	})
	if got := validRoleBinding(); got.RoleRef.APIGroup != GroupRBAC || got.Subjects[0].APIGroup != GroupRBAC || got.Subjects[2].APIGroup != "" {
		t.Errorf("defaulted binding = %+v; want roleRef and User/Group subjects in %s, ServiceAccount in the core group", got, GroupRBAC)
	}
	runUpdate(t, roleBindingResource, false, validRoleBinding, []validationCase[*rbacv1.RoleBinding]{
		{name: "subjects change", mutate: func(b *rbacv1.RoleBinding) { b.Subjects = b.Subjects[:1] }},
		{name: "role ref change", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Name = "writer" },
			want: []string{errKey(invalid, "roleRef")}},
	})
}

func TestValidateClusterRoleBinding(t *testing.T) {
	base := func() *rbacv1.ClusterRoleBinding {
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "readers"},
			RoleRef:  rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "builder", Namespace: "ci"}}}
		clusterRoleBindingResource.PrepareForCreate(b)
		return b
	}
	runValidation(t, clusterRoleBindingResource, base, []validationCase[*rbacv1.ClusterRoleBinding]{
		{name: "valid"},
		{name: "role ref to a Role", mutate: func(b *rbacv1.ClusterRoleBinding) { b.RoleRef.Kind = "Role" },
			want: []string{errKey(notSupported, "roleRef.kind")}},
		{name: "service account without namespace", mutate: func(b *rbacv1.ClusterRoleBinding) { b.Subjects[0].Namespace = "" },
			want: []string{errKey(required, "subjects[0].namespace")}},
	})
}

func TestRBACTables(t *testing.T) {
	b := stored(roleBindingResource, validRoleBinding())
	b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: "deployer", Namespace: "ci"})
	got := roleBindingResource.Row(b)
	want := []interface{}{"readers", "Role/reader", "60m", "alice", "devs", "builder, ci/deployer"}
	got[2] = since(b.CreationTimestamp.Time, testNow)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RoleBinding row (-want +got):\n%s", diff)
	}
	r := stored(clusterRoleResource, validClusterRole())
	if diff := cmp.Diff([]interface{}{"system:pod-reader", ago(time.Hour).UTC().Format(time.RFC3339)}, clusterRoleResource.Row(r)); diff != "" {
		t.Errorf("ClusterRole row (-want +got):\n%s", diff)
	}
}
