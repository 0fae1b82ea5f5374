package controllers

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// setPodName matches the name of a StatefulSet's pod: the set's name, a
// dash and the ordinal.
var setPodName = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// podOrdinal returns the set name and ordinal in a pod's name; ok is
// false for a name of another form.
func podOrdinal(pod *corev1.Pod) (parent string, ordinal int, ok bool) {
	m := setPodName.FindStringSubmatch(pod.Name)
	if m == nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return "", 0, false
	}
	return m[1], n, true
}

// isMemberOf reports whether pod's name makes it one of set's pods.
func isMemberOf(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	parent, _, ok := podOrdinal(pod)
	return ok && parent == set.Name
}

func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

// newSetPod is the pod of set at ordinal made from template t at
// revision: its stable name, hostname and subdomain, the labels naming
// it and its revision, and a volume for each of its claims.
func newSetPod(set *appsv1.StatefulSet, t *corev1.PodTemplateSpec, revision string, ordinal int) *corev1.Pod {
	name := set.Name + "-" + strconv.Itoa(ordinal)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       set.Namespace,
			Labels:          maps(t.Labels),
			Annotations:     maps(t.Annotations),
			Finalizers:      slices.Clone(t.Finalizers),
			OwnerReferences: []metav1.OwnerReference{controllerRef(statefulSetKind, &set.ObjectMeta)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinal)
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revision
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	withClaims(set, pod, ordinal)
	return pod
}

func podRevision(p *corev1.Pod) string { return p.Labels[appsv1.ControllerRevisionHashLabelKey] }

func podTerminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

func podFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// setPods is a StatefulSet's pods laid out by ordinal for one sync.
type setPods struct {
	set *appsv1.StatefulSet
	h   *setHistory
	now time.Time
	// replicas holds the pod of each ordinal in [start, start+replicas),
	// nil where none exists.
	replicas []*corev1.Pod
	// condemned are the pods outside that range, highest ordinal first.
	condemned []*corev1.Pod
}

func newSetPods(set *appsv1.StatefulSet, h *setHistory, pods []*corev1.Pod, now time.Time) *setPods {
	start, n := startOrdinal(set), replicasOf(set.Spec.Replicas)
	sp := &setPods{set: set, h: h, now: now, replicas: make([]*corev1.Pod, n)}
	for _, p := range pods {
		_, ord, ok := podOrdinal(p)
		if !ok {
			continue
		}
		if i := ord - start; i >= 0 && i < n {
			sp.replicas[i] = p
		} else {
			sp.condemned = append(sp.condemned, p)
		}
	}
	slices.SortFunc(sp.condemned, func(a, b *corev1.Pod) int {
		_, x, _ := podOrdinal(a)
		_, y, _ := podOrdinal(b)
		return y - x
	})
	return sp
}

// healthy reports whether p runs, is ready for minReadySeconds and is
// not being deleted.
func (sp *setPods) healthy(p *corev1.Pod) bool {
	if p == nil || podTerminating(p) || p.Status.Phase != corev1.PodRunning {
		return false
	}
	ok, _ := podAvailable(p, time.Duration(sp.set.Spec.MinReadySeconds)*time.Second, sp.now)
	return ok
}

// runningReady is healthy without minReadySeconds: what ordered creation
// waits for.
func runningReady(p *corev1.Pod) bool {
	return p != nil && !podTerminating(p) && p.Status.Phase == corev1.PodRunning && podReady(p)
}

// podFor is the pod to create at index i: from the current revision
// below a rolling update's partition, from the update revision
// elsewhere.
func (sp *setPods) podFor(i int) *corev1.Pod {
	s := sp.set.Spec.UpdateStrategy
	if s.Type == appsv1.RollingUpdateStatefulSetStrategyType && s.RollingUpdate != nil && i < int(ptrValue(s.RollingUpdate.Partition)) {
		return newSetPod(sp.set, sp.h.currentTemplate, sp.h.current.Name, startOrdinal(sp.set)+i)
	}
	return newSetPod(sp.set, &sp.set.Spec.Template, sp.h.update.Name, startOrdinal(sp.set)+i)
}

// updatePods takes one step towards set's spec and returns the status
// of the pods as they were found. OrderedReady steps stop at the first
// pod that is not yet running and ready; Parallel ones act on every
// ordinal at once.
func (c *StatefulSetController) updatePods(ctx context.Context, set *appsv1.StatefulSet, h *setHistory, pods []*corev1.Pod) (appsv1.StatefulSetStatus, error) {
	sp := newSetPods(set, h, pods, c.opts.Now())
	st := c.computeStatus(set, h, sp, pods)
	if set.DeletionTimestamp != nil {
		return st, nil
	}
	ordered := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	done, err := c.keepReplicas(ctx, sp, ordered)
	if done || err != nil {
		return st, err
	}
	if done, err = c.removeCondemned(ctx, sp, ordered); done || err != nil {
		return st, err
	}
	return st, c.rollingUpdate(ctx, sp)
}

// keepReplicas creates missing pods and replaces finished ones; done is
// true when an ordered set must wait before going further.
func (c *StatefulSetController) keepReplicas(ctx context.Context, sp *setPods, ordered bool) (done bool, err error) {
	var errs []error
	for i, p := range sp.replicas {
		switch {
		case p == nil:
			if err := c.createPod(ctx, sp.set, sp.podFor(i)); err != nil {
				errs = append(errs, err)
			}
			if ordered {
				return true, errors.Join(errs...)
			}
		case podFinished(p):
			// The replacement is made once the pod is gone.
			if !podTerminating(p) {
				errs = append(errs, c.deletePod(ctx, sp.set, p))
			}
			if ordered {
				return true, errors.Join(errs...)
			}
		case ordered && !runningReady(p):
			return true, errors.Join(errs...)
		default:
			errs = append(errs, c.fixIdentity(ctx, sp.set, p), c.syncClaimOwners(ctx, sp.set, p, true))
		}
	}
	err = errors.Join(errs...)
	return err != nil, err
}

// removeCondemned deletes the pods past the replica count, highest
// ordinal first; an ordered set deletes one at a time, and only a
// running and ready pod or the first unhealthy one.
func (c *StatefulSetController) removeCondemned(ctx context.Context, sp *setPods, ordered bool) (done bool, err error) {
	var errs []error
	for i, p := range sp.condemned {
		if podTerminating(p) {
			if ordered {
				return true, nil
			}
			continue
		}
		if ordered && !runningReady(p) && sp.anyUnhealthyBelow(i) {
			return true, nil
		}
		// The claims change hands first: a scaled-down pod may take its
		// claims with it.
		if err := c.syncClaimOwners(ctx, sp.set, p, false); err != nil {
			return true, errors.Join(append(errs, err)...)
		}
		errs = append(errs, c.deletePod(ctx, sp.set, p))
		if ordered {
			return true, errors.Join(errs...)
		}
	}
	return false, errors.Join(errs...)
}

// anyUnhealthyBelow reports whether a condemned pod of lower ordinal than
// condemned[i] is not running and ready: the lowest unhealthy pod is
// deleted first, others wait for it.
func (sp *setPods) anyUnhealthyBelow(i int) bool {
	for _, p := range sp.condemned[i+1:] {
		if !runningReady(p) {
			return true
		}
	}
	return false
}

// rollingUpdate deletes out-of-date pods from the highest ordinal down to
// the partition, keeping at most maxUnavailable replicas unhealthy; the
// next syncs recreate them at the update revision.
func (c *StatefulSetController) rollingUpdate(ctx context.Context, sp *setPods) error {
	s := sp.set.Spec.UpdateStrategy
	if s.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return nil
	}
	partition, maxUnavailable := 0, 1
	if ru := s.RollingUpdate; ru != nil {
		partition = int(ptrValue(ru.Partition))
		if ru.MaxUnavailable != nil {
			n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, len(sp.replicas), false)
			if err == nil {
				maxUnavailable = max(n, 1)
			}
		}
	}
	unavailable := 0
	for _, p := range sp.replicas {
		if !sp.healthy(p) {
			unavailable++
		}
	}
	var victims []*corev1.Pod
	for i := len(sp.replicas) - 1; i >= partition && unavailable+len(victims) < maxUnavailable; i-- {
		if p := sp.replicas[i]; p != nil && podRevision(p) != sp.h.update.Name && !podTerminating(p) {
			victims = append(victims, p)
		}
	}
	var errs []error
	for _, p := range victims {
		errs = append(errs, c.deletePod(ctx, sp.set, p))
	}
	return errors.Join(errs...)
}

// createPod makes pod's claims, then pod.
func (c *StatefulSetController) createPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	_, ordinal, _ := podOrdinal(pod)
	if err := c.createClaims(ctx, set, pod, ordinal); err != nil {
		c.rec.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		return err
	}
	_, err := c.client.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.IsAlreadyExists(err) {
			c.rec.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		}
		return err
	}
	c.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return nil
}

// deletePod deletes pod, unless it was replaced since the cache showed
// it.
func (c *StatefulSetController) deletePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		c.rec.Eventf(set, corev1.EventTypeWarning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		return err
	}
	c.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return nil
}

// fixIdentity restores the labels naming a pod (pod-name, pod-index)
// when something removed or changed them.
func (c *StatefulSetController) fixIdentity(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	_, ord, _ := podOrdinal(pod)
	want := map[string]string{appsv1.StatefulSetPodNameLabel: pod.Name, appsv1.PodIndexLabel: strconv.Itoa(ord)}
	if pod.Labels[appsv1.StatefulSetPodNameLabel] == want[appsv1.StatefulSetPodNameLabel] &&
		pod.Labels[appsv1.PodIndexLabel] == want[appsv1.PodIndexLabel] {
		return nil
	}
	out := pod.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for k, v := range want {
		out.Labels[k] = v
	}
	_, err := c.client.CoreV1().Pods(pod.Namespace).Update(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
