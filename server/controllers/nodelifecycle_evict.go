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

// noExecuteTaint is a NoExecute taint on a node with the time pods
// started to have it: its timeAdded, or when the controller first saw it.
type noExecuteTaint struct {
	taint corev1.Taint
	since time.Time
}

// taintID names a taint on a node, for remembering when it was first seen.
type taintID struct {
	node, key, value string
}

// noExecuteTaints returns node's NoExecute taints with their start times,
// and forgets the first-seen times of taints the node no longer has.
func (c *NodeLifecycleController) noExecuteTaints(node *corev1.Node, now time.Time) []noExecuteTaint {
	var out []noExecuteTaint
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	present := map[taintID]bool{}
	for _, t := range node.Spec.Taints {
		if t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if t.TimeAdded != nil {
			out = append(out, noExecuteTaint{taint: t, since: t.TimeAdded.Time})
			continue
		}
		id := taintID{node: node.Name, key: t.Key, value: t.Value}
		present[id] = true
		since, ok := c.seen[id]
		if !ok {
			since = now
			c.seen[id] = now
		}
		out = append(out, noExecuteTaint{taint: t, since: since})
	}
	for id := range c.seen {
		if id.node == node.Name && !present[id] {
			delete(c.seen, id)
		}
	}
	return out
}

// evictPods deletes the pods on node that have had one of its NoExecute
// taints for longer than they tolerate it, and requeues the node for the
// next one due.
func (c *NodeLifecycleController) evictPods(ctx context.Context, node *corev1.Node, now time.Time) error {
	taints := c.noExecuteTaints(node, now)
	if len(taints) == 0 {
		return nil
	}
	objs, err := c.pods.ByIndex(nodePodsIndex, node.Name)
	if err != nil {
		return err
	}
	var next time.Duration
	var errs []error
	for _, o := range objs {
		pod := o.(*corev1.Pod)
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		deadline, taint, ok := c.deadline(pod, taints)
		if !ok {
			continue
		}
		if left := deadline.Sub(now); left > 0 {
			if next == 0 || left < next {
				next = left
			}
			continue
		}
		errs = append(errs, c.evict(ctx, pod, taint))
	}
	if next > 0 {
		c.loop.addAfter(node.Name, next)
	}
	return errors.Join(errs...)
}

// deadline returns when pod must leave a node with taints, and the taint
// that sends it away first; ok is false when it tolerates them all
// forever. A toleration's time counts from when the taint was added, or
// from the pod's creation if it came later.
func (c *NodeLifecycleController) deadline(pod *corev1.Pod, taints []noExecuteTaint) (at time.Time, key string, ok bool) {
	for _, t := range taints {
		d, forever := c.tolerated(pod, t.taint)
		if forever {
			continue
		}
		since := t.since
		if created := pod.CreationTimestamp.Time; created.After(since) {
			since = created
		}
		if due := since.Add(d); !ok || due.Before(at) {
			at, key, ok = due, t.taint.Key, true
		}
	}
	return at, key, ok
}

// evict marks pod as disrupted and deletes it.
func (c *NodeLifecycleController) evict(ctx context.Context, pod *corev1.Pod, key string) error {
	pods := c.client.CoreV1().Pods(pod.Namespace)
	marked := pod.DeepCopy()
	setPodCondition(&marked.Status, corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "DeletionByTaintManager", Message: "Taint manager: deleting due to NoExecute taint",
	}, metav1.NewTime(c.opts.Now()))
	if _, err := pods.UpdateStatus(ctx, marked, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err // a conflict is retried with the pod's latest version
	}
	err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone or replaced
	}
	if err != nil {
		return err
	}
	c.lg.Info("evicted pod from tainted node", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName, "taint", key)
	c.rec.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	return nil
}

// tolerated returns how long pod stays on a node with the NoExecute
// taint: the least tolerationSeconds of its tolerations of it, or forever
// when they have none. A pod that does not tolerate it must go at once,
// except for the node lifecycle taints (unreachable, not-ready), which it
// is given PodEvictionTimeout for, as for the default 300 s toleration the
// API server adds.
func (c *NodeLifecycleController) tolerated(pod *corev1.Pod, taint corev1.Taint) (d time.Duration, forever bool) {
	lifecycle := slices.Contains(lifecycleTaintKeys, taint.Key)
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
		if lifecycle && *t.TolerationSeconds == defaultTolerationSeconds {
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
	case lifecycle:
		return c.opts.PodEvictionTimeout, false
	}
	return 0, false
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
