package scheduler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// preemptionMessage is the message of the DisruptionTarget condition put
// on a pod evicted to make room, worded as kube-scheduler's.
const preemptionMessage = Name + ": preempting to accommodate a higher priority pod"

// evict makes room for preemptor on node: each victim gets the condition
// DisruptionTarget=True (reason PreemptionByScheduler) and a Preempted
// event, and is deleted gracefully. A victim already gone is skipped.
func (s *Scheduler) evict(ctx context.Context, preemptor *corev1.Pod, node string, victims []*corev1.Pod) {
	for _, v := range victims {
		err := s.markDisrupted(ctx, v)
		if err == nil {
			s.opts.Recorder.Eventf(v, corev1.EventTypeNormal, "Preempted", "Preempted by pod %s on node %s", preemptor.UID, node)
			uid := v.UID
			err = s.client.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		}
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
			s.lg.Warn("preemption failed", "pod", podKey(preemptor), "victim", podKey(v), "err", err)
		}
	}
}

// markDisrupted adds the DisruptionTarget condition to a victim's status,
// rereading it on a conflict.
func (s *Scheduler) markDisrupted(ctx context.Context, pod *corev1.Pod) error {
	pods := s.client.CoreV1().Pods(pod.Namespace)
	cond := corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: corev1.PodReasonPreemptionByScheduler, Message: preemptionMessage,
		LastTransitionTime: metav1.NewTime(time.Now()),
	}
	uid := pod.UID
	var err error
	for range 3 {
		if pod, err = pods.Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		if pod.UID != uid {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		pod = pod.DeepCopy()
		setCondition(&pod.Status, cond)
		if _, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("pod %q in namespace %q: %w", pod.Name, pod.Namespace, err)
	}
	return nil
}
