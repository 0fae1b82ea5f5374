package controllers

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// claim returns the pods rc controls after adopting orphans its selector
// matches and releasing its pods that no longer match.
func (m *ReplicaManager) claim(ctx context.Context, rc *replicated, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	pc := &podClaim{
		client: m.client, lg: m.lg, gvk: m.kind.gvk, owner: rc.meta, selector: rc.selector,
		fetch: func(ctx context.Context) (metav1.Object, error) {
			return m.kind.fetch(ctx, rc.meta.Namespace, rc.meta.Name)
		},
	}
	return pc.claim(ctx, pods)
}

// controllerRef is the owner reference that makes owner, of kind gvk,
// the controller of a dependent, blocking its foreground deletion.
func controllerRef(gvk schema.GroupVersionKind, owner *metav1.ObjectMeta) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion:         gvk.GroupVersion().String(),
		Kind:               gvk.Kind,
		Name:               owner.Name,
		UID:                owner.UID,
		Controller:         &t,
		BlockOwnerDeletion: &t,
	}
}

// manage creates or deletes pods so that active has rc's replica count.
func (m *ReplicaManager) manage(ctx context.Context, key string, rc *replicated, active []*corev1.Pod) error {
	diff := len(active) - rc.replicas
	switch {
	case diff < 0:
		n := min(-diff, m.opts.BurstReplicas)
		m.exp.expect(key, n, nil)
		return m.createPods(ctx, key, rc, n)
	case diff > 0:
		victims := podsToDelete(active, min(diff, m.opts.BurstReplicas))
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = p.Namespace + "/" + p.Name
		}
		m.exp.expect(key, 0, keys)
		if err := m.deletePods(ctx, key, rc, victims); err != nil {
			return deleteError{err}
		}
	}
	return nil
}

// createPods creates n pods with a slow start (see slowStart).
func (m *ReplicaManager) createPods(ctx context.Context, key string, rc *replicated, n int) error {
	return slowStart(m.exp, key, n, func(int) error { return m.createPod(ctx, key, rc) })
}

func (m *ReplicaManager) createPod(ctx context.Context, key string, rc *replicated) error {
	pod := podFromTemplate(m.kind.gvk, rc)
	out, err := m.client.CoreV1().Pods(rc.meta.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		m.exp.creationObserved(key)
		if ctx.Err() == nil {
			m.rec.Eventf(rc.obj, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	m.rec.Eventf(rc.obj, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", out.Name)
	return nil
}

func podFromTemplate(gvk schema.GroupVersionKind, rc *replicated) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rc.meta.Name + "-",
			Namespace:       rc.meta.Namespace,
			OwnerReferences: []metav1.OwnerReference{controllerRef(gvk, rc.meta)},
		},
	}
	if t := rc.template; t != nil {
		pod.Labels = maps(t.Labels)
		pod.Annotations = maps(t.Annotations)
		pod.Finalizers = slices.Clone(t.Finalizers)
		pod.Spec = *t.Spec.DeepCopy()
	}
	return pod
}

func maps(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (m *ReplicaManager) deletePods(ctx context.Context, key string, rc *replicated, pods []*corev1.Pod) error {
	return parallel(len(pods), func(i int) error {
		p := pods[i]
		err := m.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &p.UID},
		})
		if err != nil {
			m.exp.deletionObserved(key, p.Namespace+"/"+p.Name)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		m.rec.Eventf(rc.obj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		return nil
	})
}

// parallel runs f(0) … f(n-1) concurrently and joins their errors.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// podsToDelete picks the n pods to delete first: unscheduled before
// scheduled, pending before unknown before running, not ready before
// ready, more restarts first, newer first.
func podsToDelete(pods []*corev1.Pod, n int) []*corev1.Pod {
	sorted := slices.Clone(pods)
	slices.SortStableFunc(sorted, comparePodsForDeletion)
	return sorted[:n]
}

func comparePodsForDeletion(a, b *corev1.Pod) int {
	if c := cmpBool(a.Spec.NodeName != "", b.Spec.NodeName != ""); c != 0 {
		return c
	}
	if c := phaseRank(a.Status.Phase) - phaseRank(b.Status.Phase); c != 0 {
		return c
	}
	if c := cmpBool(podReady(a), podReady(b)); c != 0 {
		return c
	}
	if c := int(maxRestarts(b) - maxRestarts(a)); c != 0 {
		return c
	}
	if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmpString(a.Name, b.Name)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending, "":
		return 0
	case corev1.PodUnknown:
		return 1
	}
	return 2
}

func maxRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}

// podReadyCondition returns pod's Ready condition, or nil.
func podReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	c := podReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// podAvailable reports whether p has been ready for minReady at now, and
// if it is ready but not yet available, how long until it is.
func podAvailable(p *corev1.Pod, minReady time.Duration, now time.Time) (bool, time.Duration) {
	c := podReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReady == 0 {
		return true, 0
	}
	left := c.LastTransitionTime.Add(minReady).Sub(now)
	return left <= 0, left
}
