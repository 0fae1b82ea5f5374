package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func TestCovers(t *testing.T) {
	owner := []rbacv1.PolicyRule{
		{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}},
		{Verbs: []string{"update"}, APIGroups: []string{"*"}, Resources: []string{"*/scale"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"app"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/logs/*"}},
	}
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		want int // missing sub-rules
	}{
		{"same", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}, 0},
		{"subresource", rbacv1.PolicyRule{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}, 0},
		{"other verb", rbacv1.PolicyRule{Verbs: []string{"get", "delete"}, APIGroups: []string{""}, Resources: []string{"pods"}}, 1},
		{"wildcard verb is not covered by a list", rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"pods"}}, 1},
		{"wildcard group is not covered by a group", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"*"}, Resources: []string{"pods"}}, 1},
		{"wildcard subresource covers one", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}}, 0},
		{"wildcard subresource not the resource", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"apps"}, Resources: []string{"deployments"}}, 1},
		{"named object", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"app"}}, 0},
		{"other name", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"app", "db"}}, 1},
		{"all names from one", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}, 1},
		{"url under prefix", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/logs/a"}}, 0},
		{"url elsewhere", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics", "/logs/b"}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := covers(owner, tc.rule); len(got) != tc.want {
				t.Errorf("covers(owner, %+v) missing %v, want %d missing", tc.rule, got, tc.want)
			}
		})
	}
}
