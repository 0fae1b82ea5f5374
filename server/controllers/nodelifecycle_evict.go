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

// lifecycleTaintKeys are the taint keys the controller owns.
var lifecycleTaintKeys = []string{corev1.TaintNodeUnreachable, corev1.TaintNodeNotReady}

// isLifecycleTaint reports whether t is a NoExecute or NoSchedule taint
// with one of the controller's keys.
func isLifecycleTaint(t corev1.Taint) bool {
	return slices.Contains(lifecycleTaintKeys, t.Key) && (t.Effect == corev1.TaintEffectNoExecute || t.Effect == corev1.TaintEffectNoSchedule)
}

// setTaints makes key's NoExecute and NoSchedule taints the only lifecycle
// taints of node (none when key is empty), keeping the time the NoExecute
// taint was first added. It returns the node as written and, for a key,
// when its NoExecute taint was added.
func (c *NodeLifecycleController) setTaints(ctx context.Context, node *corev1.Node, key string, now time.Time) (*corev1.Node, time.Time, error) {
	var since time.Time
	hasNoSchedule, others := false, false
	for _, t := range node.Spec.Taints {
		switch {
		case !isLifecycleTaint(t):
		case t.Key != key:
			others = true
		case t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded != nil:
			since = t.TimeAdded.Time
		case t.Effect == corev1.TaintEffectNoSchedule:
			hasNoSchedule = true
		}
	}
	if !others && (key == "" || !since.IsZero() && hasNoSchedule) {
		return node, since, nil
	}
	out := node.DeepCopy()
	out.Spec.Taints = slices.DeleteFunc(out.Spec.Taints, isLifecycleTaint)
	if key != "" {
		if since.IsZero() {
			since = now
		}
		added := metav1.NewTime(since)
		out.Spec.Taints = append(out.Spec.Taints,
			corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added},
			corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule, TimeAdded: &added},
		)
	}
	written, err := c.client.CoreV1().Nodes().Update(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		return nil, time.Time{}, err
	}
	if key == "" {
		c.lg.Info("node ready again, lifecycle taints removed", "node", node.Name)
	} else {
		c.lg.Info("node tainted", "node", node.Name, "taint", key)
	}
	return written, since, nil
}

// evictPods deletes the pods on node that have had the NoExecute taint
// key since since for longer than they tolerate, and requeues the node for
// the next one due.
func (c *NodeLifecycleController) evictPods(ctx context.Context, node, key string, since, now time.Time) error {
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
		d, forever := c.tolerated(pod, key)
		if forever {
			continue
		}
		if left := since.Add(d).Sub(now); left > 0 {
			if next == 0 || left < next {
				next = left
			}
			continue
		}
		errs = append(errs, c.evict(ctx, pod, key))
	}
	if next > 0 {
		c.loop.addAfter(node, next)
	}
	return errors.Join(errs...)
}

func (c *NodeLifecycleController) evict(ctx context.Context, pod *corev1.Pod, key string) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.lg.Info("evicted pod from tainted node", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName, "taint", key)
	c.rec.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	return nil
}

// tolerated returns how long pod stays on a node with the NoExecute taint
// key (unreachable or not-ready): the least tolerationSeconds of its
// tolerations of that taint (the default 300 meaning PodEvictionTimeout),
// PodEvictionTimeout if it has none, or forever for a toleration without
// tolerationSeconds.
func (c *NodeLifecycleController) tolerated(pod *corev1.Pod, key string) (d time.Duration, forever bool) {
	taint := corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute}
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
