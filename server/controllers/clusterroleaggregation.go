package controllers

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	rbacinformers "k8s.io/client-go/informers/rbac/v1"
	"k8s.io/client-go/kubernetes"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
)

// ClusterRoleAggregationController fills the rules of every ClusterRole
// with an aggregationRule: the rules of the other ClusterRoles its
// selectors match, in the order of their names, each rule once. A change
// to any ClusterRole makes every aggregated one be looked at again (there
// are few).
type ClusterRoleAggregationController struct {
	client kubernetes.Interface
	roles  rbaclisters.ClusterRoleLister
	synced []cache.InformerSynced
	*loop
}

// NewClusterRoleAggregationController returns a controller fed by roles.
// lg may be nil.
func NewClusterRoleAggregationController(client kubernetes.Interface, roles rbacinformers.ClusterRoleInformer, lg *slog.Logger) (*ClusterRoleAggregationController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &ClusterRoleAggregationController{client: client, roles: roles.Lister()}
	c.loop = newLoop("clusterrole-aggregation", lg.With("component", "clusterrole-aggregation-controller"), c.sync)
	enqueueAll := func(any) {
		all, err := c.roles.List(labels.Everything())
		if err != nil {
			return
		}
		for _, r := range all {
			if r.AggregationRule != nil {
				c.add(r.Name)
			}
		}
	}
	synced, err := addHandlers(handler{roles.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueAll,
		UpdateFunc: func(_, obj any) { enqueueAll(obj) },
		DeleteFunc: enqueueAll,
	}})
	if err != nil {
		return nil, err
	}
	c.synced = synced
	return c, nil
}

// Run aggregates with workers goroutines until ctx ends.
func (c *ClusterRoleAggregationController) Run(ctx context.Context, workers int) error {
	return c.run(ctx, workers, c.synced...)
}

func (c *ClusterRoleAggregationController) sync(ctx context.Context, name string) error {
	role, err := c.roles.Get(name)
	if apierrors.IsNotFound(err) || err == nil && role.AggregationRule == nil {
		return nil
	}
	if err != nil {
		return err
	}
	rules, err := c.aggregate(role)
	if err != nil {
		return err
	}
	if apiequality.Semantic.DeepEqual(rules, role.Rules) || len(rules) == 0 && len(role.Rules) == 0 {
		return nil
	}
	next := role.DeepCopy()
	next.Rules = rules
	_, err = c.client.RbacV1().ClusterRoles().Update(ctx, next, metav1.UpdateOptions{})
	return err
}

// aggregate returns the rules of the ClusterRoles role's selectors match.
func (c *ClusterRoleAggregationController) aggregate(role *rbacv1.ClusterRole) ([]rbacv1.PolicyRule, error) {
	all, err := c.roles.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *rbacv1.ClusterRole) int { return strings.Compare(a.Name, b.Name) })
	var sels []labels.Selector
	for i := range role.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&role.AggregationRule.ClusterRoleSelectors[i])
		if err != nil {
			return nil, nil // validation refuses such selectors; nothing to do
		}
		sels = append(sels, sel)
	}
	var rules []rbacv1.PolicyRule
	for _, other := range all {
		if other.Name == role.Name || !slices.ContainsFunc(sels, func(s labels.Selector) bool { return s.Matches(labels.Set(other.Labels)) }) {
			continue
		}
		for _, r := range other.Rules {
			if !slices.ContainsFunc(rules, func(have rbacv1.PolicyRule) bool { return apiequality.Semantic.DeepEqual(have, r) }) {
				rules = append(rules, r)
			}
		}
	}
	return rules, nil
}
