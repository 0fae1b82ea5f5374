package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The annotations the Deployment controller keeps, as upstream names them.
const (
	revisionAnnotation        = "deployment.kubernetes.io/revision"
	desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	maxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	lastAppliedAnnotation     = "kubectl.kubernetes.io/last-applied-configuration"
	revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	rollbackToAnnotation      = "deprecated.deployment.rollback.to"
)

// rolloutRolling moves d's pods to its new ReplicaSet within maxSurge
// and maxUnavailable: scale the new one up as far as the surge allows,
// else scale old ones down as far as availability allows, then report.
func (c *DeploymentController) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, olds, d, err := c.replicaSets(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := append(slices.Clone(olds), newRS)
	scaled, newRS, err := c.reconcileNewRS(ctx, d, all, newRS)
	if err != nil {
		return err
	}
	if !scaled {
		all = append(slices.Clone(olds), newRS)
		if scaled, err = c.reconcileOldRSs(ctx, d, olds, newRS); err != nil {
			return err
		}
	}
	all = append(slices.Clone(olds), newRS)
	if !scaled && deploymentComplete(d, c.calculateStatus(d, all, newRS)) {
		if err := c.cleanup(ctx, d, olds); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}

// rolloutRecreate scales every old ReplicaSet to zero, waits for their
// pods to go, then creates or scales up the new one.
func (c *DeploymentController) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, olds, d, err := c.replicaSets(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	scaledDown := false
	for i, rs := range olds {
		if replicasOf(rs.Spec.Replicas) == 0 {
			continue
		}
		var scaled bool
		if scaled, olds[i], err = c.scaleRS(ctx, d, rs, 0); err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	oldRunning := slices.ContainsFunc(olds, func(rs *appsv1.ReplicaSet) bool { return rs.Status.Replicas > 0 })
	if scaledDown || oldRunning {
		return c.syncRolloutStatus(ctx, d, append(slices.Clone(olds), newRS), newRS)
	}
	if newRS == nil {
		if newRS, olds, d, err = c.replicaSets(ctx, d, rsList, true); err != nil {
			return err
		}
	}
	if _, newRS, err = c.scaleRS(ctx, d, newRS, replicasOf(d.Spec.Replicas)); err != nil {
		return err
	}
	all := append(slices.Clone(olds), newRS)
	if deploymentComplete(d, c.calculateStatus(d, all, newRS)) {
		if err := c.cleanup(ctx, d, olds); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}

// reconcileNewRS scales the new ReplicaSet towards d's replicas: up as
// far as maxSurge allows, or down when d shrank.
func (c *DeploymentController) reconcileNewRS(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, *appsv1.ReplicaSet, error) {
	want := replicasOf(d.Spec.Replicas)
	cur := replicasOf(newRS.Spec.Replicas)
	if cur == want {
		return false, newRS, nil
	}
	if cur > want {
		return c.scaleRS(ctx, d, newRS, want)
	}
	return c.scaleRS(ctx, d, newRS, newRSReplicas(d, all, newRS))
}

// newRSReplicas is the size the new ReplicaSet may grow to now: all
// ReplicaSets together stay within replicas + maxSurge.
func newRSReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int {
	want := replicasOf(d.Spec.Replicas)
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return want
	}
	surge, _ := fenceposts(d)
	current := specReplicas(all)
	if current >= want+surge {
		return replicasOf(newRS.Spec.Replicas)
	}
	up := min(want+surge-current, want-replicasOf(newRS.Spec.Replicas))
	return replicasOf(newRS.Spec.Replicas) + up
}

// reconcileOldRSs scales old ReplicaSets down as far as availability
// allows: first their pods that are not available (they count for
// nothing), then available ones down to replicas - maxUnavailable.
func (c *DeploymentController) reconcileOldRSs(ctx context.Context, d *appsv1.Deployment, olds []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	if specReplicas(olds) == 0 {
		return false, nil
	}
	_, unavailable := fenceposts(d)
	minAvailable := replicasOf(d.Spec.Replicas) - unavailable
	newUnavailable := replicasOf(newRS.Spec.Replicas) - int(newRS.Status.AvailableReplicas)
	budget := specReplicas(append(slices.Clone(olds), newRS)) - minAvailable - newUnavailable
	if budget <= 0 {
		return false, nil
	}
	slices.SortStableFunc(olds, byCreation)
	cleaned := 0
	for i, rs := range olds {
		n, avail := replicasOf(rs.Spec.Replicas), int(rs.Status.AvailableReplicas)
		if cleaned >= budget || n == 0 || n <= avail {
			continue
		}
		down := min(budget-cleaned, n-avail)
		var err error
		if _, olds[i], err = c.scaleRS(ctx, d, rs, n-down); err != nil {
			return false, err
		}
		cleaned += down
	}
	// An old ReplicaSet's status may still count pods its lowered size is
	// deleting: count no more available pods than its size.
	available := int(newRS.Status.AvailableReplicas)
	for _, rs := range olds {
		available += min(int(rs.Status.AvailableReplicas), replicasOf(rs.Spec.Replicas))
	}
	total := available - minAvailable
	scaled := 0
	for i, rs := range olds {
		n := replicasOf(rs.Spec.Replicas)
		if scaled >= total || n == 0 {
			continue
		}
		down := min(n, total-scaled)
		var err error
		if _, olds[i], err = c.scaleRS(ctx, d, rs, n-down); err != nil {
			return false, err
		}
		scaled += down
	}
	return cleaned+max(scaled, 0) > 0, nil
}

// fenceposts resolves maxSurge (rounded up) and maxUnavailable (rounded
// down) against d's replicas; both zero would block a rollout, so
// unavailable is then 1. A Recreate Deployment has neither.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int) {
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil {
		return 0, 0
	}
	want := replicasOf(d.Spec.Replicas)
	surge = scaledValue(ru.MaxSurge, want, true)
	unavailable = scaledValue(ru.MaxUnavailable, want, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, min(unavailable, want)
}

func scaledValue(v *intstr.IntOrString, total int, roundUp bool) int {
	if v == nil {
		return 0
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, total, roundUp)
	if err != nil {
		return 0
	}
	return n
}

// scaleRS sets rs's replicas to n, and the desired and max replicas
// annotations to d's; it reports whether the size changed.
func (c *DeploymentController) scaleRS(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, n int) (bool, *appsv1.ReplicaSet, error) {
	cur := replicasOf(rs.Spec.Replicas)
	surge, _ := fenceposts(d)
	want := replicasOf(d.Spec.Replicas)
	desired, maxReplicas := strconv.Itoa(want), strconv.Itoa(want+surge)
	if cur == n && rs.Annotations[desiredReplicasAnnotation] == desired && rs.Annotations[maxReplicasAnnotation] == maxReplicas {
		return false, rs, nil
	}
	out := rs.DeepCopy()
	out.Spec.Replicas = ptrInt32(n)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[desiredReplicasAnnotation], out.Annotations[maxReplicasAnnotation] = desired, maxReplicas
	out, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		return false, rs, err
	}
	if cur != n {
		dir := "up"
		if n < cur {
			dir = "down"
		}
		c.rec.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", dir, rs.Name, cur, n)
	}
	return cur != n, out, nil
}

// cleanup deletes the oldest old ReplicaSets beyond revisionHistoryLimit
// that have no pods left and whose status is current.
func (c *DeploymentController) cleanup(ctx context.Context, d *appsv1.Deployment, olds []*appsv1.ReplicaSet) error {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var live []*appsv1.ReplicaSet
	for _, rs := range olds {
		if rs.DeletionTimestamp == nil {
			live = append(live, rs)
		}
	}
	extra := len(live) - int(*d.Spec.RevisionHistoryLimit)
	if extra <= 0 {
		return nil
	}
	slices.SortStableFunc(live, func(a, b *appsv1.ReplicaSet) int {
		if c := revisionOf(a) - revisionOf(b); c != 0 {
			return int(min(max(c, -1), 1))
		}
		return byCreation(a, b)
	})
	for _, rs := range live[:extra] {
		if rs.Status.Replicas != 0 || replicasOf(rs.Spec.Replicas) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		uid := rs.UID
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// replicaSets splits d's ReplicaSets into the new one (whose template is
// d's, nil if none and !create) and the old ones, and keeps revisions:
// the new ReplicaSet's, and d's own annotation, is one above the highest
// old one. A Deployment rolled back to an old template so makes that
// ReplicaSet the newest revision again.
func (c *DeploymentController) replicaSets(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, *appsv1.Deployment, error) {
	slices.SortStableFunc(rsList, byCreation)
	var newRS *appsv1.ReplicaSet
	var olds []*appsv1.ReplicaSet
	for _, rs := range rsList {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
		} else {
			olds = append(olds, rs)
		}
	}
	var maxOld int64
	for _, rs := range olds {
		maxOld = max(maxOld, revisionOf(rs))
	}
	revision := strconv.FormatInt(maxOld+1, 10)
	var err error
	switch {
	case newRS != nil:
		newRS, err = c.syncNewRS(ctx, d, newRS, revision)
		if err != nil {
			return nil, nil, d, err
		}
		d, err = c.noteNewRS(ctx, d, newRS, progressing(corev1.ConditionTrue, reasonFoundNewRS, fmt.Sprintf("Found new replica set %q", newRS.Name), c.opts.Now()), false)
	case create:
		newRS, err = c.createNewRS(ctx, d, olds, revision)
		if err != nil {
			return nil, nil, d, err
		}
		d, err = c.noteNewRS(ctx, d, newRS, progressing(corev1.ConditionTrue, reasonNewRSCreated, fmt.Sprintf("Created new replica set %q", newRS.Name), c.opts.Now()), true)
	}
	return newRS, olds, d, err
}

// syncNewRS brings the existing new ReplicaSet's revision, copied
// annotations and minReadySeconds up to date.
func (c *DeploymentController) syncNewRS(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, revision string) (*appsv1.ReplicaSet, error) {
	out := rs.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	copyDeploymentAnnotations(d, out)
	if revisionOf(rs) >= mustParse(revision) {
		out.Annotations[revisionAnnotation] = rs.Annotations[revisionAnnotation]
	} else {
		out.Annotations[revisionAnnotation] = revision
	}
	out.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	if apiequality.Semantic.DeepEqual(out.Annotations, rs.Annotations) && out.Spec.MinReadySeconds == rs.Spec.MinReadySeconds {
		return rs, nil
	}
	return c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, out, metav1.UpdateOptions{})
}

// noteNewRS records the new ReplicaSet's revision on d and, when d has a
// progress deadline and (created) a new ReplicaSet was made or no
// Progressing condition is there yet, cond.
func (c *DeploymentController) noteNewRS(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, cond appsv1.DeploymentCondition, created bool) (*appsv1.Deployment, error) {
	out := d.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if rev := rs.Annotations[revisionAnnotation]; rev != "" && revisionOf(out) < mustParse(rev) {
		out.Annotations[revisionAnnotation] = rev
	}
	if hasProgressDeadline(d) && (created || condition(d.Status, appsv1.DeploymentProgressing) == nil) {
		setCondition(&out.Status, cond)
	}
	if apiequality.Semantic.DeepEqual(out.Annotations, d.Annotations) && apiequality.Semantic.DeepEqual(out.Status, d.Status) {
		return d, nil
	}
	return c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
}

// createNewRS creates the ReplicaSet of d's template, named and
// labelled by the template hash. A name taken by another template is a
// hash collision: collisionCount goes up and the next sync tries a new
// name.
func (c *DeploymentController) createNewRS(ctx context.Context, d *appsv1.Deployment, olds []*appsv1.ReplicaSet, revision string) (*appsv1.ReplicaSet, error) {
	hash := computeHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = cloneWith(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = cloneWith(sel.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: tmpl.Labels,
			Annotations:     map[string]string{revisionAnnotation: revision},
			OwnerReferences: []metav1.OwnerReference{controllerRef(deploymentKind, &d.ObjectMeta)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptrInt32(0), MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	copyDeploymentAnnotations(d, rs)
	n := newRSReplicas(d, append(slices.Clone(olds), rs), rs)
	rs.Spec.Replicas = ptrInt32(n)
	surge, _ := fenceposts(d)
	rs.Annotations[desiredReplicasAnnotation] = strconv.Itoa(replicasOf(d.Spec.Replicas))
	rs.Annotations[maxReplicasAnnotation] = strconv.Itoa(replicasOf(d.Spec.Replicas) + surge)
	out, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil, c.collided(ctx, d, rs)
	}
	if err != nil {
		return nil, err
	}
	if n > 0 {
		c.rec.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", out.Name, n)
	}
	return out, nil
}

// collided handles a new ReplicaSet's name being taken: by d's own
// ReplicaSet of the same template (the cache lags), or by another one.
func (c *DeploymentController) collided(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	existing, err := c.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if ref := metav1.GetControllerOf(existing); ref != nil && ref.UID == d.UID && equalIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
		return fmt.Errorf("replica set %q exists but is not in the cache yet", rs.Name)
	}
	out := d.DeepCopy()
	out.Status.CollisionCount = ptrInt32(int(ptrValue(d.Status.CollisionCount)) + 1)
	if _, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return fmt.Errorf("hash collision on replica set name %q", rs.Name)
}

// copyDeploymentAnnotations copies d's annotations to rs, but not those
// that belong to the Deployment itself.
func copyDeploymentAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) {
	for k, v := range d.Annotations {
		switch k {
		case lastAppliedAnnotation, revisionAnnotation, revisionHistoryAnnotation, desiredReplicasAnnotation, maxReplicasAnnotation, rollbackToAnnotation:
			continue
		}
		rs.Annotations[k] = v
	}
}

// equalIgnoreHash compares two pod templates without the
// pod-template-hash label.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

func cloneWith(m map[string]string, k, v string) map[string]string {
	out := maps(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

func revisionOf(obj metav1.Object) int64 {
	return mustParse(obj.GetAnnotations()[revisionAnnotation])
}

// mustParse is s as a number; a missing or bad revision counts as 0.
func mustParse(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func specReplicas(rss []*appsv1.ReplicaSet) int {
	n := 0
	for _, rs := range rss {
		if rs != nil {
			n += replicasOf(rs.Spec.Replicas)
		}
	}
	return n
}

func activeReplicaSets(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && replicasOf(rs.Spec.Replicas) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

func byCreation(a, b *appsv1.ReplicaSet) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmpString(a.Name, b.Name)
}

func ptrInt32(n int) *int32 { v := int32(n); return &v }

// ptrValue is *p, or the zero value when p is nil.
func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
