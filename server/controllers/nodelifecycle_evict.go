package controllers

import (
	"context"
	"errors"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func isUnreachableTaint(t corev1.Taint) bool {
	return t.Key == corev1.TaintNodeUnreachable && (t.Effect == corev1.TaintEffectNoExecute || t.Effect == corev1.TaintEffectNoSchedule)
}

// ensureTaints gives node the unreachable NoExecute and NoSchedule taints
// and returns the node as written and when the NoExecute taint was added.
func (c *NodeLifecycleController) ensureTaints(ctx context.Context, node *corev1.Node, now time.Time) (*corev1.Node, time.Time, error) {
	var since time.Time
	hasNoSchedule := false
	for _, t := range node.Spec.Taints {
		switch {
		case t.Key != corev1.TaintNodeUnreachable:
		case t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded != nil:
			since = t.TimeAdded.Time
		case t.Effect == corev1.TaintEffectNoSchedule:
			hasNoSchedule = true
		}
	}
	if !since.IsZero() && hasNoSchedule {
		return node, since, nil
	}
	out := node.DeepCopy()
	out.Spec.Taints = slices.DeleteFunc(out.Spec.Taints, isUnreachableTaint)
	if since.IsZero() {
		since = now
	}
	added := metav1.NewTime(since)
	out.Spec.Taints = append(out.Spec.Taints,
		corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added},
		corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule, TimeAdded: &added},
	)
	written, err := c.client.CoreV1().Nodes().Update(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		return nil, time.Time{}, err
	}
	c.lg.Info("node tainted unreachable", "node", node.Name)
	return written, since, nil
}

// removeTaints removes the unreachable taints from node, if it has any.
func (c *NodeLifecycleController) removeTaints(ctx context.Context, node *corev1.Node) error {
	if !slices.ContainsFunc(node.Spec.Taints, isUnreachableTaint) {
		return nil
	}
	out := node.DeepCopy()
	out.Spec.Taints = slices.DeleteFunc(out.Spec.Taints, isUnreachableTaint)
	if _, err := c.client.CoreV1().Nodes().Update(ctx, out, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.lg.Info("node reachable again", "node", node.Name)
	return nil
}

// evictPods deletes the pods on node that have been unreachable since
// since for longer than they tolerate, and requeues the node for the next
// one due.
func (c *NodeLifecycleController) evictPods(ctx context.Context, node string, since, now time.Time) error {
	objs, err := c.pods.ByIndex(nodePodsIndex, node)
	if err != nil {
		return err
	}
	var next time.Duration
	var errs []error
	for _, o := range objs {
		pod := o.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			continue
		}
		d, forever := c.tolerated(pod)
		if forever {
			continue
		}
		if left := since.Add(d).Sub(now); left > 0 {
			if next == 0 || left < next {
				next = left
			}
			continue
		}
		errs = append(errs, c.evict(ctx, pod))
	}
	if next > 0 {
		c.loop.addAfter(node, next)
	}
	return errors.Join(errs...)
}

func (c *NodeLifecycleController) evict(ctx context.Context, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.lg.Info("evicted pod from unreachable node", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	c.rec.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	return nil
}

// tolerated returns how long pod stays on an unreachable node: the least
// tolerationSeconds of its tolerations of the unreachable NoExecute taint
// (the default 300 meaning PodEvictionTimeout), PodEvictionTimeout if it
// has none, or forever for a toleration without tolerationSeconds.
func (c *NodeLifecycleController) tolerated(pod *corev1.Pod) (d time.Duration, forever bool) {
	taint := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	found, unbounded := false, false
	for _, t := range pod.Spec.Tolerations {
		if !tolerates(t, taint) {
			continue
		}
		if t.TolerationSeconds == nil {
			unbounded = true
			continue
		}
		td := time.Duration(*t.TolerationSeconds) * time.Second
		if *t.TolerationSeconds == defaultTolerationSeconds {
			td = c.opts.PodEvictionTimeout
		}
		if !found || td < d {
			d, found = td, true
		}
	}
	switch {
	case found:
		return max(d, 0), false
	case unbounded:
		return 0, true
	}
	return c.opts.PodEvictionTimeout, false
}

// tolerates reports whether t tolerates taint.
func tolerates(t corev1.Toleration, taint corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key == "" {
		return t.Operator == corev1.TolerationOpExists
	}
	if t.Key != taint.Key {
		return false
	}
	return t.Operator == corev1.TolerationOpExists || t.Value == taint.Value
}
