package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// deploymentKind is the group/version/kind of a Deployment, as owner
// references name it.
var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// DeploymentOptions tunes a DeploymentController.
type DeploymentOptions struct {
	// Recorder records ScalingReplicaSet events; nil records none.
	Recorder EventRecorder
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// DeploymentController rolls Deployments out through ReplicaSets, as
// Kubernetes does: one ReplicaSet per pod template, named and labelled
// by the template's hash; a rolling update (within maxSurge and
// maxUnavailable) or a recreation moves the pods from the old
// ReplicaSets to the new one; revisions, the history limit, pause and
// the progress deadline are kept as upstream keeps them, and the status
// carries what `kubectl rollout status` reads.
type DeploymentController struct {
	workload
	deployments appslisters.DeploymentLister
	rss         appslisters.ReplicaSetLister
	opts        DeploymentOptions
}

// NewDeploymentController returns a DeploymentController fed by the
// given informers. lg may be nil.
func NewDeploymentController(client kubernetes.Interface, deployments appsinformers.DeploymentInformer, rss appsinformers.ReplicaSetInformer, lg *slog.Logger, opts DeploymentOptions) (*DeploymentController, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &DeploymentController{deployments: deployments.Lister(), rss: rss.Lister(), opts: opts}
	c.workload = newWorkload(client, "deployment", opts.Recorder, lg, c.sync)
	if err := c.loop.watch(c.loop.own(deployments.Informer()), each(rss.Informer(), c.rsChanged)); err != nil {
		return nil, err
	}
	return c, nil
}

// rsChanged enqueues the Deployment controlling rs, or, for an orphan,
// every Deployment whose selector matches it (to adopt it).
func (c *DeploymentController) rsChanged(obj any) {
	rs, ok := untombstone(obj).(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if metav1.GetControllerOf(rs) != nil {
		if key, ok := controllerKeyOf(rs, deploymentKind); ok {
			c.loop.add(key)
		}
		return
	}
	if ds, err := c.deployments.Deployments(rs.Namespace).List(labels.Everything()); err == nil {
		addSelecting(c.loop, ds, func(d *appsv1.Deployment) *metav1.LabelSelector { return d.Spec.Selector }, rs.Labels)
	}
}

// sync brings one Deployment's ReplicaSets and status in line with its
// spec.
func (c *DeploymentController) sync(ctx context.Context, key string) error {
	shared, found, err := cached[*appsv1.Deployment](c.loop, key)
	if !found {
		return err
	}
	d := shared.DeepCopy()
	rsList, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}
	if d, err = c.checkPaused(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused || isScalingEvent(d, rsList) {
		return c.syncScale(ctx, d, rsList)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return c.rolloutRecreate(ctx, d, rsList)
	}
	return c.rolloutRolling(ctx, d, rsList)
}

// claimReplicaSets returns the ReplicaSets d controls after adopting
// orphans its selector matches and releasing those that stopped
// matching.
func (c *DeploymentController) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil, nil // the API refuses such Deployments; nothing to own
	}
	all, err := c.rss.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	rest := c.client.AppsV1().RESTClient()
	var owned []*appsv1.ReplicaSet
	var errs []error
	adoptable := func() error { return c.checkAdoptable(ctx, d) }
	for _, rs := range all {
		ref := metav1.GetControllerOf(rs)
		matches := sel.Matches(labels.Set(rs.Labels))
		switch {
		case ref != nil && ref.UID == d.UID && (matches || rs.DeletionTimestamp != nil):
			owned = append(owned, rs.DeepCopy())
		case ref != nil && ref.UID == d.UID:
			errs = append(errs, ignoreNotFound(patchOwnerRefs(ctx, rest, "replicasets", rs, withoutOwner(rs.OwnerReferences, d.UID))))
		case ref == nil && matches && rs.DeletionTimestamp == nil && d.DeletionTimestamp == nil:
			if err := adoptable(); err != nil {
				adoptable = func() error { return err }
				continue
			}
			adoptable = func() error { return nil }
			refs := append(slices.Clone(rs.OwnerReferences), controllerRef(deploymentKind, &d.ObjectMeta))
			if err := patchOwnerRefs(ctx, rest, "replicasets", rs, refs); err != nil {
				errs = append(errs, ignoreNotFound(err))
				continue
			}
			out := rs.DeepCopy()
			out.OwnerReferences = refs
			owned = append(owned, out)
		}
	}
	return owned, errors.Join(errs...)
}

// checkAdoptable re-reads d from the API: only a live Deployment that is
// not being deleted may adopt (the cache may lag behind a delete).
func (c *DeploymentController) checkAdoptable(ctx context.Context, d *appsv1.Deployment) error {
	fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if fresh.UID != d.UID || fresh.DeletionTimestamp != nil {
		return fmt.Errorf("deployment %q was replaced or is being deleted", d.Name)
	}
	return nil
}
