package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	toolscache "k8s.io/client-go/tools/cache"
)

// Informer handlers keep the cache and the queue current. Pods assigned to
// a node go to the cache, pending pods for this scheduler to the queue; a
// change that may free room (a pod gone or finished, a node added or made
// more welcoming) sends unschedulable pods back to be tried.

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// responsible reports whether a pending pod is this scheduler's to place.
func responsible(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == Name) &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

func terminated(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func (s *Scheduler) onPodAdd(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	switch {
	case pod.Spec.NodeName != "":
		s.cache.setPod(pod)
	case responsible(pod) && !s.cache.isAssumed(pod.UID):
		s.noteNomination(pod)
		s.queue.add(podKey(pod), pod)
	}
}

// noteNomination counts a pending pod's nomination on its node. A pod
// reported without one keeps the nomination this scheduler made, which
// the API may not show yet.
func (s *Scheduler) noteNomination(pod *corev1.Pod) {
	if pod.Status.NominatedNodeName != "" {
		s.cache.nominate(pod)
	}
}

func (s *Scheduler) onPodUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	pod, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	switch {
	case pod.Spec.NodeName != "":
		s.queue.remove(podKey(pod))
		s.cache.setPod(pod)
		if terminated(pod) && !terminated(old) {
			s.queue.moveAll()
		}
	case responsible(pod):
		if !s.cache.isAssumed(pod.UID) {
			s.noteNomination(pod)
			s.queue.add(podKey(pod), pod)
		}
	default:
		s.queue.remove(podKey(pod))
		if s.cache.unnominate(pod.UID) {
			s.queue.moveAll() // the room it held is free
		}
	}
}

func (s *Scheduler) onPodDelete(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.queue.remove(podKey(pod))
	s.cache.removePod(pod.UID)
	if s.cache.unnominate(pod.UID) || pod.Spec.NodeName != "" {
		s.queue.moveAll()
	}
}

func (s *Scheduler) onNodeAdd(obj any) {
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.setNode(node)
		s.queue.moveAll()
	}
}

func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	node, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	s.cache.setNode(node)
	if schedulingChanged(old, node) {
		s.queue.moveAll()
	}
}

// schedulingChanged reports whether a node update may let pods fit that
// did not before; heartbeats and status-only noise do not.
func schedulingChanged(old, cur *corev1.Node) bool {
	return nodeReady(old) != nodeReady(cur) ||
		old.Spec.Unschedulable != cur.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, cur.Status.Allocatable) ||
		!equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints)
}

func (s *Scheduler) onNodeDelete(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.removeNode(node.Name)
	}
}
