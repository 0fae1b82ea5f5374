package controllers

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// computeStatus counts set's pods as upstream does: every pod it owns
// counts as a replica; ready and available ones (ready for
// minReadySeconds) are counted among them; live pods count as current or
// updated by their revision. A rolling update whose pods are all updated
// and ready is complete: the update revision becomes the current one.
func (c *StatefulSetController) computeStatus(set *appsv1.StatefulSet, h *setHistory, sp *setPods, pods []*corev1.Pod) appsv1.StatefulSetStatus {
	st := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    h.current.Name,
		UpdateRevision:     h.update.Name,
		Conditions:         set.Status.Conditions,
	}
	if h.collisionCount > 0 || set.Status.CollisionCount != nil {
		n := h.collisionCount
		st.CollisionCount = &n
	}
	for _, p := range pods {
		st.Replicas++
		if runningReady(p) {
			st.ReadyReplicas++
			if sp.healthy(p) {
				st.AvailableReplicas++
			}
		}
		if podTerminating(p) {
			continue
		}
		if rev := podRevision(p); rev == h.current.Name {
			st.CurrentReplicas++
		} else if rev == h.update.Name {
			st.UpdatedReplicas++
		}
	}
	if h.current.Name == h.update.Name {
		st.UpdatedReplicas = st.CurrentReplicas
	}
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentReplicas = st.UpdatedReplicas
		st.CurrentRevision = st.UpdateRevision
	}
	return st
}

// writeStatus writes st unless set already has it.
func (c *StatefulSetController) writeStatus(ctx context.Context, set *appsv1.StatefulSet, st appsv1.StatefulSetStatus) error {
	if apiequality.Semantic.DeepEqual(set.Status, st) {
		return nil
	}
	out := set.DeepCopy()
	out.Status = st
	_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	return ignoreNotFound(err)
}

// untilAvailable is how long until the first of set's ready pods becomes
// available, or 0 when none is waiting for minReadySeconds.
func (c *StatefulSetController) untilAvailable(set *appsv1.StatefulSet, pods []*corev1.Pod) time.Duration {
	minReady := time.Duration(set.Spec.MinReadySeconds) * time.Second
	if minReady == 0 {
		return 0
	}
	now := c.opts.Now()
	var wait time.Duration
	for _, p := range pods {
		if ok, left := podAvailable(p, minReady, now); !ok && left > 0 && (wait == 0 || left < wait) {
			wait = left
		}
	}
	return wait
}
