package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacclient "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/util/retry"
)

// Reconcile brings the bootstrap policy into the cluster through c:
// it creates the ClusterRoles, ClusterRoleBindings and Roles (of
// namespaces that exist) that are missing,
// and adds to existing ones the labels, annotations, rules, aggregation
// selectors and subjects they lack, keeping whatever users added. Objects
// annotated rbac.authorization.kubernetes.io/autoupdate=false are left
// as they are. Several servers may reconcile at once.
func Reconcile(ctx context.Context, c rbacclient.RbacV1Interface) error {
	var errs []error
	for _, want := range ClusterRoles() {
		errs = append(errs, reconcileRole(ctx, c.ClusterRoles(), want))
	}
	for _, want := range ClusterRoleBindings() {
		errs = append(errs, reconcileBinding(ctx, c.ClusterRoleBindings(), want))
	}
	for _, want := range Roles() {
		errs = append(errs, reconcileNamespaceRole(ctx, c.Roles(want.Namespace), want))
	}
	return errors.Join(errs...)
}

// reconcileNamespaceRole creates want, or adds to it the labels,
// annotations and rules it lacks, as reconcileRole does.
func reconcileNamespaceRole(ctx context.Context, c rbacclient.RoleInterface, want *rbacv1.Role) error {
	err := retry.OnError(retry.DefaultRetry, raced, func() error {
		cur, err := c.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = c.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil || cur.Annotations[AutoupdateAnnotation] == "false" {
			return err
		}
		next := cur.DeepCopy()
		mergeMeta(&next.ObjectMeta, &want.ObjectMeta)
		next.Rules = mergeRules(next.Rules, want.Rules)
		if apiequality.Semantic.DeepEqual(cur, next) {
			return nil
		}
		_, err = c.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("role %q in namespace %q: %w", want.Name, want.Namespace, err)
	}
	return nil
}

// mergeRules returns have plus the rules of want it does not cover.
func mergeRules(have, want []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	for _, r := range want {
		if len(covers(have, r)) > 0 {
			have = append(have, r)
		}
	}
	return have
}

func reconcileRole(ctx context.Context, c rbacclient.ClusterRoleInterface, want *rbacv1.ClusterRole) error {
	err := retry.OnError(retry.DefaultRetry, raced, func() error {
		cur, err := c.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = c.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil || cur.Annotations[AutoupdateAnnotation] == "false" {
			return err
		}
		next := cur.DeepCopy()
		mergeMeta(&next.ObjectMeta, &want.ObjectMeta)
		if want.AggregationRule != nil {
			// An aggregated role's rules are the aggregation controller's.
			if next.AggregationRule == nil {
				next.AggregationRule = &rbacv1.AggregationRule{}
			}
			for _, sel := range want.AggregationRule.ClusterRoleSelectors {
				if !slices.ContainsFunc(next.AggregationRule.ClusterRoleSelectors, func(s metav1.LabelSelector) bool {
					return apiequality.Semantic.DeepEqual(s, sel)
				}) {
					next.AggregationRule.ClusterRoleSelectors = append(next.AggregationRule.ClusterRoleSelectors, sel)
				}
			}
		} else {
			next.Rules = mergeRules(next.Rules, want.Rules)
		}
		if apiequality.Semantic.DeepEqual(cur, next) {
			return nil
		}
		_, err = c.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("clusterrole %q: %w", want.Name, err)
	}
	return nil
}

func reconcileBinding(ctx context.Context, c rbacclient.ClusterRoleBindingInterface, want *rbacv1.ClusterRoleBinding) error {
	err := retry.OnError(retry.DefaultRetry, raced, func() error {
		cur, err := c.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = c.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil || cur.Annotations[AutoupdateAnnotation] == "false" {
			return err
		}
		if cur.RoleRef != want.RoleRef {
			// roleRef is immutable: bind the right role anew, keeping the
			// subjects users added.
			next := want.DeepCopy()
			next.Subjects = mergeSubjects(cur.Subjects, want.Subjects)
			if err := c.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			_, err = c.Create(ctx, next, metav1.CreateOptions{})
			return err
		}
		next := cur.DeepCopy()
		mergeMeta(&next.ObjectMeta, &want.ObjectMeta)
		next.Subjects = mergeSubjects(cur.Subjects, want.Subjects)
		if apiequality.Semantic.DeepEqual(cur, next) {
			return nil
		}
		_, err = c.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("clusterrolebinding %q: %w", want.Name, err)
	}
	return nil
}

// raced reports whether err comes from another server reconciling the
// same object at once: the write is tried again on what it wrote.
func raced(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err)
}

// mergeMeta adds want's labels and annotations that m lacks.
func mergeMeta(m, want *metav1.ObjectMeta) {
	for k, v := range want.Labels {
		if _, ok := m.Labels[k]; !ok {
			if m.Labels == nil {
				m.Labels = map[string]string{}
			}
			m.Labels[k] = v
		}
	}
	for k, v := range want.Annotations {
		if _, ok := m.Annotations[k]; !ok {
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			m.Annotations[k] = v
		}
	}
}

// mergeSubjects returns have plus the subjects of want it lacks.
func mergeSubjects(have, want []rbacv1.Subject) []rbacv1.Subject {
	out := slices.Clone(have)
	for _, s := range want {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
