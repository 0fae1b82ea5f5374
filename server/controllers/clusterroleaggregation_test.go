package controllers

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestClusterRoleAggregation(t *testing.T) {
	e := newEnv(t)
	c, err := NewClusterRoleAggregationController(e.client, e.factory.Rbac().V1().ClusterRoles(), e.lg)
	if err != nil {
		t.Fatal(err)
	}
	roles := e.client.RbacV1().ClusterRoles()
	create := func(name string, labels map[string]string, agg *rbacv1.AggregationRule, rules ...rbacv1.PolicyRule) {
		t.Helper()
		r := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, AggregationRule: agg, Rules: rules}
		if _, err := roles.Create(e.ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sel := func(label string) *rbacv1.AggregationRule {
		return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "true"}}}}
	}
	pods := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	secrets := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}
	jobs := rbacv1.PolicyRule{Verbs: []string{"create"}, APIGroups: []string{"batch"}, Resources: []string{"jobs"}}
	// A chain, as admin ← edit ← view: "top" aggregates "mid", which
	// aggregates "b-low" and "a-low".
	create("top", nil, sel("to-top"), secrets)
	create("mid", map[string]string{"to-top": "true"}, sel("to-mid"))
	create("b-low", map[string]string{"to-mid": "true"}, nil, pods, jobs)
	create("a-low", map[string]string{"to-mid": "true"}, nil, pods)
	create("other", map[string]string{"to-nothing": "true"}, nil, secrets)
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })

	waitRules := func(name string, want []rbacv1.PolicyRule) {
		t.Helper()
		e.eventually("rules of "+name, func() error {
			r, err := roles.Get(e.ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !apiequality.Semantic.DeepEqual(r.Rules, want) {
				return fmt.Errorf("rules (-want +got):\n%s", cmp.Diff(want, r.Rules))
			}
			return nil
		})
	}
	// Rules in the order of the matching roles' names, each once; the
	// role's own rules are replaced.
	waitRules("mid", []rbacv1.PolicyRule{pods, jobs})
	waitRules("top", []rbacv1.PolicyRule{pods, jobs})

	// A matching role's change reaches every aggregated role.
	low, err := roles.Get(e.ctx, "a-low", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	low.Rules = []rbacv1.PolicyRule{secrets}
	if _, err := roles.Update(e.ctx, low, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules("mid", []rbacv1.PolicyRule{secrets, pods, jobs})
	waitRules("top", []rbacv1.PolicyRule{secrets, pods, jobs})
	if err := roles.Delete(e.ctx, "b-low", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules("top", []rbacv1.PolicyRule{secrets})
}

// TestGCRBACDependents: a RoleBinding owned by a ClusterRole goes with it.
func TestGCRBACDependents(t *testing.T) {
	e := newEnv(t)
	startGC(e)
	owner, err := e.client.RbacV1().ClusterRoles().Create(e.ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bindings := e.client.RbacV1().RoleBindings("default")
	_, err = bindings.Create(e.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "owned", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "owner", UID: owner.UID}}},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "owner"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.RbacV1().ClusterRoles().Delete(e.ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("owned rolebinding", func() error {
		_, err := bindings.Get(e.ctx, "owned", metav1.GetOptions{})
		return err
	})
}
