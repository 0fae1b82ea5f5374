package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// TestAggregatedRolesOfResourceClaims checks that edit writes a
// namespace's resource claims and their templates and view reads them,
// as Kubernetes' bootstrap roles do, while device classes and slices,
// cluster-wide, stay out of both.
func TestAggregatedRolesOfResourceClaims(t *testing.T) {
	claims := rbacv1.PolicyRule{APIGroups: []string{"resource.k8s.io"}, Resources: []string{"resourceclaims", "resourceclaimtemplates"}}
	tests := []struct {
		name  string
		rules []rbacv1.PolicyRule
		verbs []string
		res   []string
		want  int // missing sub-rules
	}{
		{"edit writes claims", editRules(), []string{"create", "update", "patch", "delete", "deletecollection"}, nil, 0},
		{"view reads claims", viewRules(), []string{"get", "list", "watch"}, nil, 0},
		{"view reads claim status", viewRules(), []string{"get"}, []string{"resourceclaims/status"}, 0},
		{"view does not write claims", viewRules(), []string{"create"}, nil, 2},
		{"edit does not write device classes", editRules(), []string{"create"}, []string{"deviceclasses", "resourceslices"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := claims
			r.Verbs = tc.verbs
			if tc.res != nil {
				r.Resources = tc.res
			}
			if got := covers(tc.rules, r); len(got) != tc.want {
				t.Errorf("covers(rules, %+v) missing %v, want %d missing", r, got, tc.want)
			}
		})
	}
}
