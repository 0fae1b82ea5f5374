package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scheduleLoop runs one scheduling cycle at a time; it owns s.selector.
func (s *Scheduler) scheduleLoop(ctx context.Context) error {
	for {
		it, err := s.queue.pop(ctx)
		if err != nil {
			return nil
		}
		s.scheduleOne(ctx, it)
	}
}

// scheduleOne places one pod: on success the pod is assumed onto its node
// and handed to a binder; otherwise it is parked as unschedulable and its
// status and an event say why.
func (s *Scheduler) scheduleOne(ctx context.Context, it *qItem) {
	pod := it.pod
	if !responsible(pod) || s.cache.isAssumed(pod.UID) {
		s.queue.done(it)
		return
	}
	p := newPodInfo(pod)
	err := checkClaims(pod, s.claims, s.cache.nodeCount())
	var node string
	if err == nil {
		node, err = s.selector.selectNode(p)
	}
	if err != nil {
		s.queue.unschedulable(it)
		s.lg.Debug("pod unschedulable", "pod", it.key, "reason", err)
		msg := err.Error()
		nominated := s.cache.nominatedNode(pod.UID)
		var victims []*corev1.Pod
		var fe *fitError
		if errors.As(err, &fe) && s.cache.mayPreempt(p) {
			if node, v := s.selector.preempt(p); node != "" {
				nominated, victims = node, v
				s.lg.Debug("pod preempts", "pod", it.key, "node", node, "victims", len(v))
			}
		}
		s.enqueueTask(ctx, func(ctx context.Context) {
			s.evict(ctx, pod, nominated, victims)
			s.markUnschedulable(ctx, pod, msg, nominated)
		})
		return
	}
	s.queue.done(it)
	if !s.enqueueTask(ctx, func(ctx context.Context) { s.bind(ctx, it.key, p, node) }) {
		s.cache.forget(pod.UID)
	}
}

// bind posts the binding of an assumed pod. On failure the pod is
// forgotten, and tried again unless it is gone or already bound.
func (s *Scheduler) bind(ctx context.Context, key string, p *podInfo, node string) {
	pod := p.pod
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	err := s.opts.Binder.Bind(ctx, b)
	if err == nil {
		s.opts.Recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s to %s", key, node)
		return
	}
	s.cache.forget(pod.UID)
	switch {
	case ctx.Err() != nil:
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Deleted, or bound elsewhere: the informer brings the outcome.
		s.lg.Debug("binding refused", "pod", key, "node", node, "err", err)
	default:
		s.lg.Warn("binding failed", "pod", key, "node", node, "err", err)
		s.queue.retry(key, pod)
	}
}

// markUnschedulable records why a pod fits nowhere: the condition
// PodScheduled=False reason Unschedulable and a FailedScheduling event,
// with status.nominatedNodeName set to the node it waits for room on ("" if
// none). Both are skipped when the pod already carries the same message
// and nomination, so a pod retried for the same reason doesn't pile up
// events.
func (s *Scheduler) markUnschedulable(ctx context.Context, pod *corev1.Pod, msg, nominated string) {
	if hasUnschedulable(pod, msg, nominated) {
		return
	}
	s.opts.Recorder.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "%s", msg)
	for range 3 {
		if hasUnschedulable(pod, msg, nominated) {
			return
		}
		err := s.writeUnschedulable(ctx, pod, msg, nominated)
		if err == nil || apierrors.IsNotFound(err) || ctx.Err() != nil {
			return
		}
		if !apierrors.IsConflict(err) {
			s.lg.Warn("pod status update failed", "pod", podKey(pod), "err", err)
			return
		}
		if pod, err = s.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil || !responsible(pod) {
			return
		}
	}
}

func hasUnschedulable(pod *corev1.Pod, msg, nominated string) bool {
	if pod.Status.NominatedNodeName != nominated {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == msg
		}
	}
	return false
}

func (s *Scheduler) writeUnschedulable(ctx context.Context, pod *corev1.Pod, msg, nominated string) error {
	pod = pod.DeepCopy()
	pod.Status.NominatedNodeName = nominated
	cond := corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: msg,
		LastTransitionTime: metav1.NewTime(time.Now()),
	}
	setCondition(&pod.Status, cond)
	_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("pod %q in namespace %q: %w", pod.Name, pod.Namespace, err)
	}
	return nil
}

// setCondition replaces the condition of the same type, keeping its
// transition time when the status did not change.
func setCondition(st *corev1.PodStatus, cond corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type != cond.Type {
			continue
		}
		if st.Conditions[i].Status == cond.Status {
			cond.LastTransitionTime = st.Conditions[i].LastTransitionTime
		}
		st.Conditions[i] = cond
		return
	}
	st.Conditions = append(st.Conditions, cond)
}
