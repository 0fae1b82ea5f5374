package controllers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// podEvents is how a controller that creates and deletes pods under
// expectations (replication controllers, ReplicaSets, DaemonSets) follows
// them: a change of a pod enqueues its controller, the pod's creation and
// deletion count against that controller's expectations, and an orphan
// enqueues the controllers that may adopt it.
type podEvents struct {
	loop *loop
	exp  *expectations
	// controllerOf returns the key of the live object of the loop's kind
	// that controls pod.
	controllerOf func(pod *corev1.Pod) (string, bool)
	// adopters enqueues the objects of the loop's kind that may adopt the
	// orphan pod.
	adopters func(pod *corev1.Pod)
	// updated, if set, is also called with a controlled pod's key on an
	// update.
	updated func(key string, old, pod *corev1.Pod)
}

// handler returns the handler of pods's informer.
func (e *podEvents) handler(pods cache.SharedIndexInformer) handler {
	return handler{pods, cache.ResourceEventHandlerFuncs{AddFunc: e.add, UpdateFunc: e.update, DeleteFunc: e.delete}}
}

func (e *podEvents) add(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		e.delete(pod)
		return
	}
	if key, ok := e.controllerOf(pod); ok {
		e.exp.creationObserved(key)
		e.loop.add(key)
		return
	}
	if metav1.GetControllerOf(pod) == nil {
		e.adopters(pod)
	}
}

func (e *podEvents) update(oldObj, obj any) {
	old, pod := oldObj.(*corev1.Pod), obj.(*corev1.Pod)
	if old.ResourceVersion == pod.ResourceVersion {
		return
	}
	if key, ok := e.controllerOf(old); ok {
		e.loop.add(key)
	}
	key, ok := e.controllerOf(pod)
	if !ok {
		if metav1.GetControllerOf(pod) == nil && pod.DeletionTimestamp == nil {
			e.adopters(pod)
		}
		return
	}
	if pod.DeletionTimestamp != nil {
		e.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
	}
	e.loop.add(key)
	if e.updated != nil {
		e.updated(key, old, pod)
	}
}

func (e *podEvents) delete(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	if key, ok := e.controllerOf(pod); ok {
		e.exp.deletionObserved(key, pod.Namespace+"/"+pod.Name)
		e.loop.add(key)
	}
}
