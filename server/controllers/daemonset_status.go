package controllers

import (
	"context"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// daemonSetStatus counts ds's pods on nodes: desired are the nodes that
// should run it, current those of them with a pod, misscheduled the
// others with a pod; ready, available and updated look at the oldest pod
// of each desired node. It also returns how long until a ready pod
// becomes available, 0 if none is waiting.
func daemonSetStatus(ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod, hash string, now time.Time) (appsv1.DaemonSetStatus, time.Duration) {
	byNode := podsByNode(pods, false)
	p := newPlacement(ds)
	st := appsv1.DaemonSetStatus{
		ObservedGeneration: ds.Status.ObservedGeneration,
		CollisionCount:     ds.Status.CollisionCount,
		Conditions:         slices.Clone(ds.Status.Conditions),
	}
	var wait time.Duration
	for _, node := range nodes {
		run, _ := shouldRunOn(p, node)
		onNode := byNode[node.Name]
		switch {
		case !run && len(onNode) > 0:
			st.NumberMisscheduled++
		case !run:
		case len(onNode) == 0:
			st.DesiredNumberScheduled++
		default:
			st.DesiredNumberScheduled++
			st.CurrentNumberScheduled++
			pod := slices.MinFunc(onNode, oldestFirst)
			if podReady(pod) {
				st.NumberReady++
				if ok, left := podAvailable(pod, minReady(ds), now); ok {
					st.NumberAvailable++
				} else if wait == 0 || left < wait {
					wait = left
				}
			}
			if podUpdated(ds, pod, hash) {
				st.UpdatedNumberScheduled++
			}
		}
	}
	st.NumberUnavailable = max(st.DesiredNumberScheduled-st.NumberAvailable, 0)
	return st, wait
}

// updateStatus writes ds's status when it changed; observe also records
// the generation as seen (not while earlier writes are unconfirmed). A
// pod that will turn available resyncs ds then.
func (c *DaemonSetController) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod, hash string, observe bool) error {
	st, wait := daemonSetStatus(ds, nodes, pods, hash, c.opts.Now())
	if observe {
		st.ObservedGeneration = ds.Generation
	}
	if wait > 0 {
		c.loop.addAfter(ds.Namespace+"/"+ds.Name, wait+10*time.Millisecond)
	}
	if apiequality.Semantic.DeepEqual(st, ds.Status) {
		return nil
	}
	out := ds.DeepCopy()
	out.Status = st
	_, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	return err
}
