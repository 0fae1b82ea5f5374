package controllers

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// updateStatus writes rc's status from its active pods when it changed.
// A failed create shows as the ReplicaFailure condition.
func (m *ReplicaManager) updateStatus(ctx context.Context, key string, rc *replicated, active []*corev1.Pod, manageErr error) error {
	st, wait := m.computeStatus(rc, active)
	st.Conditions = replicaFailure(rc.status.Conditions, manageErr, m.opts.Now())
	if wait > 0 {
		m.loop.addAfter(key, wait)
	}
	if apiequality.Semantic.DeepEqual(st, rc.status) {
		return nil
	}
	return m.kind.writeStatus(ctx, rc, st)
}

// computeStatus counts active pods; wait > 0 is when the next ready pod
// becomes available.
func (m *ReplicaManager) computeStatus(rc *replicated, active []*corev1.Pod) (st corev1.ReplicationControllerStatus, wait time.Duration) {
	var tmpl labels.Selector = labels.Nothing()
	if rc.template != nil && len(rc.template.Labels) > 0 {
		tmpl = labels.SelectorFromSet(rc.template.Labels)
	}
	minReady := time.Duration(rc.minReady) * time.Second
	now := m.opts.Now()
	st.Replicas = int32(len(active))
	st.ObservedGeneration = rc.meta.Generation
	for _, p := range active {
		if tmpl.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if podReady(p) {
			st.ReadyReplicas++
		}
		ok, left := podAvailable(p, minReady, now)
		if ok {
			st.AvailableReplicas++
		} else if left > 0 && (wait == 0 || left < wait) {
			wait = left
		}
	}
	return st, wait
}

// replicaFailure returns conds with the ReplicaFailure condition set when
// err is a failure to create or delete pods, and removed otherwise.
// The reason is FailedDelete when a deletion failed, else FailedCreate.
func replicaFailure(conds []corev1.ReplicationControllerCondition, err error, now time.Time) []corev1.ReplicationControllerCondition {
	var out []corev1.ReplicationControllerCondition
	var prev *corev1.ReplicationControllerCondition
	for i := range conds {
		if conds[i].Type == corev1.ReplicationControllerReplicaFailure {
			prev = &conds[i]
			continue
		}
		out = append(out, conds[i])
	}
	if err == nil {
		return out
	}
	c := corev1.ReplicationControllerCondition{
		Type:               corev1.ReplicationControllerReplicaFailure,
		Status:             corev1.ConditionTrue,
		Reason:             failureReason(err),
		Message:            err.Error(),
		LastTransitionTime: metav1.NewTime(now),
	}
	if prev != nil && prev.Message == c.Message {
		c.LastTransitionTime = prev.LastTransitionTime
	}
	return append(out, c)
}

// deleteError marks an error from deleting pods.
type deleteError struct{ error }

func (e deleteError) Unwrap() error { return e.error }

func failureReason(err error) string {
	var de deleteError
	if errors.As(err, &de) {
		return "FailedDelete"
	}
	return "FailedCreate"
}
