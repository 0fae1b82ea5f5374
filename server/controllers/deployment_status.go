package controllers

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/rand"
)

// The reasons of the Progressing and Available conditions, as upstream
// words them (kubectl rollout status reads ProgressDeadlineExceeded).
const (
	reasonNewRSCreated   = "NewReplicaSetCreated"
	reasonFoundNewRS     = "FoundNewReplicaSet"
	reasonRSUpdated      = "ReplicaSetUpdated"
	reasonNewRSAvailable = "NewReplicaSetAvailable"
	reasonTimedOut       = "ProgressDeadlineExceeded"
	reasonPaused         = "DeploymentPaused"
	reasonResumed        = "DeploymentResumed"
	reasonMinAvailable   = "MinimumReplicasAvailable"
	reasonMinUnavailable = "MinimumReplicasUnavailable"
)

// computeHash is the pod-template-hash of a template, computed as
// upstream computes it (FNV-32a of the template's dump, then the
// collision count), so that ReplicaSet names match a Kubernetes
// cluster's.
func computeHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*t))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// calculateStatus counts d's pods from its ReplicaSets' status, keeping
// d's conditions but the Available one, which it sets.
func (c *DeploymentController) calculateStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) appsv1.DeploymentStatus {
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		CollisionCount:     d.Status.CollisionCount,
		Conditions:         slices.Clone(d.Status.Conditions),
	}
	for _, rs := range all {
		if rs == nil {
			continue
		}
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(int32(specReplicas(all))-st.AvailableReplicas, 0)
	_, unavailable := fenceposts(d)
	if int(st.AvailableReplicas) >= replicasOf(d.Spec.Replicas)-unavailable {
		setCondition(&st, newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, reasonMinAvailable, "Deployment has minimum availability.", c.opts.Now()))
	} else {
		setCondition(&st, newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, reasonMinUnavailable, "Deployment does not have minimum availability.", c.opts.Now()))
	}
	return st
}

// syncRolloutStatus writes d's status with the Progressing condition
// upstream's way: NewReplicaSetAvailable once complete,
// ReplicaSetUpdated while pods move, ProgressDeadlineExceeded when none
// moved for progressDeadlineSeconds.
func (c *DeploymentController) syncRolloutStatus(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	st := c.calculateStatus(d, all, newRS)
	now := c.opts.Now()
	cur := condition(d.Status, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) {
		st.Conditions = withoutCondition(st.Conditions, appsv1.DeploymentProgressing)
	}
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == reasonNewRSAvailable
	if hasProgressDeadline(d) && !complete {
		switch {
		case deploymentComplete(d, st):
			setCondition(&st, progressing(corev1.ConditionTrue, reasonNewRSAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", nameOf(newRS)), now))
		case deploymentProgressing(d, st):
			msg := fmt.Sprintf("Deployment %q is progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
			}
			cond := progressing(corev1.ConditionTrue, reasonRSUpdated, msg, now)
			if cur != nil && cur.Status == corev1.ConditionTrue {
				cond.LastTransitionTime = cur.LastTransitionTime
			}
			st.Conditions = append(withoutCondition(st.Conditions, appsv1.DeploymentProgressing), cond)
		case c.timedOut(d, st):
			setCondition(&st, progressing(corev1.ConditionFalse, reasonTimedOut, fmt.Sprintf("ReplicaSet %q has timed out progressing.", nameOf(newRS)), now))
		}
	}
	if f := replicaSetFailure(all, newRS); f != nil {
		setCondition(&st, *f)
	} else {
		st.Conditions = withoutCondition(st.Conditions, appsv1.DeploymentReplicaFailure)
	}
	if wait, ok := c.untilDeadline(d, st); ok {
		c.loop.addAfter(d.Namespace+"/"+d.Name, wait)
	}
	return c.writeStatus(ctx, d, st)
}

// syncStatusOnly writes the counts of a Deployment that is not rolled
// out now (paused or being deleted).
func (c *DeploymentController) syncStatusOnly(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	var newRS *appsv1.ReplicaSet
	for _, rs := range rsList {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
		}
	}
	return c.writeStatus(ctx, d, c.calculateStatus(d, rsList, newRS))
}

// checkPaused sets Progressing to DeploymentPaused when d was paused,
// and to DeploymentResumed when it was resumed, so that a pause does not
// count against the progress deadline.
func (c *DeploymentController) checkPaused(ctx context.Context, d *appsv1.Deployment) (*appsv1.Deployment, error) {
	if !hasProgressDeadline(d) {
		return d, nil
	}
	cur := condition(d.Status, appsv1.DeploymentProgressing)
	pausedCond := cur != nil && cur.Reason == reasonPaused
	var cond appsv1.DeploymentCondition
	switch {
	case d.Spec.Paused && !pausedCond:
		cond = progressing(corev1.ConditionUnknown, reasonPaused, "Deployment is paused", c.opts.Now())
	case !d.Spec.Paused && pausedCond:
		cond = progressing(corev1.ConditionUnknown, reasonResumed, "Deployment is resumed", c.opts.Now())
	default:
		return d, nil
	}
	out := d.DeepCopy()
	setCondition(&out.Status, cond)
	return c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
}

func (c *DeploymentController) writeStatus(ctx context.Context, d *appsv1.Deployment, st appsv1.DeploymentStatus) error {
	if apiequality.Semantic.DeepEqual(st, d.Status) {
		return nil
	}
	out := d.DeepCopy()
	out.Status = st
	_, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	return err
}

// deploymentComplete: every replica is updated and available, and the
// status is of the current generation.
func deploymentComplete(d *appsv1.Deployment, st appsv1.DeploymentStatus) bool {
	n := int32(replicasOf(d.Spec.Replicas))
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// deploymentProgressing: pods moved since d's last status.
func deploymentProgressing(d *appsv1.Deployment, st appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas || st.Replicas < old.Replicas ||
		st.ReadyReplicas > old.ReadyReplicas || st.AvailableReplicas > old.AvailableReplicas
}

// timedOut: no progress for progressDeadlineSeconds since the
// Progressing condition last changed.
func (c *DeploymentController) timedOut(d *appsv1.Deployment, st appsv1.DeploymentStatus) bool {
	cur := condition(st, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cur == nil || cur.Reason == reasonNewRSAvailable {
		return false
	}
	if cur.Reason == reasonTimedOut {
		return true
	}
	deadline := time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
	return !cur.LastUpdateTime.Add(deadline).After(c.opts.Now())
}

// untilDeadline is how long until a rollout in progress times out.
func (c *DeploymentController) untilDeadline(d *appsv1.Deployment, st appsv1.DeploymentStatus) (time.Duration, bool) {
	cur := condition(st, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cur == nil || d.Spec.Paused || deploymentComplete(d, st) ||
		cur.Reason == reasonNewRSAvailable || cur.Reason == reasonTimedOut {
		return 0, false
	}
	left := cur.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(c.opts.Now())
	return max(left, 0) + time.Second, true
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	p := d.Spec.ProgressDeadlineSeconds
	return p != nil && *p != math.MaxInt32
}

func progressing(status corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	return newCondition(appsv1.DeploymentProgressing, status, reason, msg, now)
}

func newCondition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: ts, LastTransitionTime: ts}
}

func condition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition sets cond unless one of the same status and reason is
// there; a change of reason alone keeps the transition time.
func setCondition(st *appsv1.DeploymentStatus, cond appsv1.DeploymentCondition) {
	cur := condition(*st, cond.Type)
	if cur != nil && cur.Status == cond.Status && cur.Reason == cond.Reason {
		return
	}
	if cur != nil && cur.Status == cond.Status {
		cond.LastTransitionTime = cur.LastTransitionTime
	}
	st.Conditions = append(withoutCondition(st.Conditions, cond.Type), cond)
}

func withoutCondition(conds []appsv1.DeploymentCondition, t appsv1.DeploymentConditionType) []appsv1.DeploymentCondition {
	var out []appsv1.DeploymentCondition
	for _, c := range conds {
		if c.Type != t {
			out = append(out, c)
		}
	}
	return out
}

func nameOf(rs *appsv1.ReplicaSet) string {
	if rs == nil {
		return ""
	}
	return rs.Name
}

// replicaSetFailure is the ReplicaFailure condition of the new
// ReplicaSet, else of the newest old one that has it, as a Deployment
// condition; nil if none has it.
func replicaSetFailure(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) *appsv1.DeploymentCondition {
	order := slices.Clone(all)
	slices.SortStableFunc(order, func(a, b *appsv1.ReplicaSet) int {
		if a == newRS || b == newRS {
			return cmpBool(b == newRS, a == newRS)
		}
		return byCreation(b, a)
	})
	for _, rs := range order {
		if rs == nil {
			continue
		}
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				return &appsv1.DeploymentCondition{
					Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason, Message: c.Message,
					LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime,
				}
			}
		}
	}
	return nil
}
