package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// statefulSetKind is the group/version/kind of a StatefulSet, as owner
// references name it.
var statefulSetKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// StatefulSetOptions tunes a StatefulSetController.
type StatefulSetOptions struct {
	// Recorder records SuccessfulCreate and SuccessfulDelete events; nil
	// records none.
	Recorder EventRecorder
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// StatefulSetController keeps the pods of every StatefulSet as
// Kubernetes does: one pod per ordinal, named NAME-N from
// spec.ordinals.start, with hostname NAME-N and subdomain serviceName so
// that a headless Service gives each its own DNS name. OrderedReady sets
// create pods one at a time in ordinal order, each after the previous is
// running and ready, and remove them in reverse; Parallel sets do both at
// once. Each template is snapshotted in a ControllerRevision; a rolling
// update replaces pods from the highest ordinal down to the partition,
// at most maxUnavailable at a time, and OnDelete sets leave replacement
// to the user.
type StatefulSetController struct {
	workload
	sets      appslisters.StatefulSetLister
	pods      corelisters.PodLister
	revisions appslisters.ControllerRevisionLister
	claims    corelisters.PersistentVolumeClaimLister
	opts      StatefulSetOptions
}

// NewStatefulSetController returns a StatefulSetController fed by the
// given informers. lg may be nil.
func NewStatefulSetController(client kubernetes.Interface, sets appsinformers.StatefulSetInformer, pods coreinformers.PodInformer,
	revisions appsinformers.ControllerRevisionInformer, claims coreinformers.PersistentVolumeClaimInformer,
	lg *slog.Logger, opts StatefulSetOptions,
) (*StatefulSetController, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &StatefulSetController{sets: sets.Lister(), pods: pods.Lister(), revisions: revisions.Lister(), claims: claims.Lister(), opts: opts}
	c.workload = newWorkload(client, "statefulset", opts.Recorder, lg, c.sync)
	if err := c.loop.watch(c.loop.own(sets.Informer()),
		each(pods.Informer(), c.dependentChanged), each(revisions.Informer(), c.dependentChanged),
		handler{claims.Informer(), cache.ResourceEventHandlerFuncs{DeleteFunc: c.claimDeleted}}); err != nil {
		return nil, err
	}
	return c, nil
}

// claimDeleted enqueues the StatefulSets of the claim's namespace that
// have claim templates: a pod may be waiting for a claim being deleted to
// go, to be made again.
func (c *StatefulSetController) claimDeleted(obj any) {
	m, ok := untombstone(obj).(metav1.Object)
	if !ok {
		return
	}
	sets, err := c.sets.StatefulSets(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range sets {
		if len(s.Spec.VolumeClaimTemplates) > 0 {
			c.loop.add(s.Namespace + "/" + s.Name)
		}
	}
}

// dependentChanged enqueues the StatefulSet controlling a pod or a
// ControllerRevision, or, for an orphan, every StatefulSet whose selector
// matches it (to adopt it).
func (c *StatefulSetController) dependentChanged(obj any) {
	m, ok := untombstone(obj).(metav1.Object)
	if !ok {
		return
	}
	if metav1.GetControllerOf(m) != nil {
		if key, ok := controllerKeyOf(m, statefulSetKind); ok {
			c.loop.add(key)
		}
		return
	}
	if sets, err := c.sets.StatefulSets(m.GetNamespace()).List(labels.Everything()); err == nil {
		addSelecting(c.loop, sets, func(s *appsv1.StatefulSet) *metav1.LabelSelector { return s.Spec.Selector }, m.GetLabels())
	}
}

// sync brings one StatefulSet's revisions, pods and status in line with
// its spec.
func (c *StatefulSetController) sync(ctx context.Context, key string) error {
	shared, found, err := cached[*appsv1.StatefulSet](c.loop, key)
	if !found {
		return err
	}
	set := shared.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil // the API refuses such StatefulSets; nothing to own
	}
	adopter := &setAdopter{c: c, set: set}
	revisions, err := c.claimRevisions(ctx, set, sel, adopter)
	if err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, set, sel, adopter)
	if err != nil {
		return err
	}
	h, err := c.revisionsFor(ctx, set, revisions)
	if err != nil {
		return err
	}
	st, updateErr := c.updatePods(ctx, set, h, pods)
	if err := c.writeStatus(ctx, set, st); err != nil {
		return errors.Join(updateErr, err)
	}
	if updateErr != nil {
		return updateErr
	}
	if wait := c.untilAvailable(set, pods); wait > 0 {
		c.loop.addAfter(key, wait)
	}
	return c.truncateHistory(ctx, set, h, pods, revisions)
}

// setAdopter re-reads a StatefulSet from the API once per sync, the first
// time it adopts: only a live set that is not being deleted may adopt
// (the cache may lag behind a delete).
type setAdopter struct {
	c       *StatefulSetController
	set     *appsv1.StatefulSet
	checked bool
	err     error
}

func (a *setAdopter) check(ctx context.Context) error {
	if a.checked {
		return a.err
	}
	a.checked = true
	fresh, err := a.c.client.AppsV1().StatefulSets(a.set.Namespace).Get(ctx, a.set.Name, metav1.GetOptions{})
	switch {
	case err != nil:
		a.err = err
	case fresh.UID != a.set.UID || fresh.DeletionTimestamp != nil:
		a.err = fmt.Errorf("statefulset %q was replaced or is being deleted", a.set.Name)
	}
	return a.err
}

// claimPods returns the pods set controls after adopting orphans that
// its selector matches and whose names make them its members, and
// releasing its pods that stopped matching.
func (c *StatefulSetController) claimPods(ctx context.Context, set *appsv1.StatefulSet, sel labels.Selector, a *setAdopter) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	rest := c.client.CoreV1().RESTClient()
	var owned []*corev1.Pod
	var errs []error
	for _, pod := range all {
		ref := metav1.GetControllerOf(pod)
		matches := sel.Matches(labels.Set(pod.Labels)) && isMemberOf(set, pod)
		switch {
		case ref != nil && ref.UID == set.UID && (matches || pod.DeletionTimestamp != nil):
			owned = append(owned, pod)
		case ref != nil && ref.UID == set.UID:
			errs = append(errs, ignoreNotFound(patchOwnerRefs(ctx, rest, "pods", pod, withoutOwner(pod.OwnerReferences, set.UID))))
		case ref == nil && matches && pod.DeletionTimestamp == nil && set.DeletionTimestamp == nil:
			if err := a.check(ctx); err != nil {
				continue
			}
			refs := append(slices.Clone(pod.OwnerReferences), controllerRef(statefulSetKind, &set.ObjectMeta))
			if err := patchOwnerRefs(ctx, rest, "pods", pod, refs); err != nil {
				errs = append(errs, ignoreNotFound(err))
				continue
			}
			out := pod.DeepCopy()
			out.OwnerReferences = refs
			owned = append(owned, out)
		}
	}
	return owned, errors.Join(errs...)
}

// claimRevisions is claimPods for ControllerRevisions: it returns those
// set controls, adopting the orphans its selector matches.
func (c *StatefulSetController) claimRevisions(ctx context.Context, set *appsv1.StatefulSet, sel labels.Selector, a *setAdopter) ([]*appsv1.ControllerRevision, error) {
	all, err := c.revisions.ControllerRevisions(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	rest := c.client.AppsV1().RESTClient()
	var owned []*appsv1.ControllerRevision
	var errs []error
	for _, cr := range all {
		ref := metav1.GetControllerOf(cr)
		matches := sel.Matches(labels.Set(cr.Labels))
		switch {
		case ref != nil && ref.UID == set.UID && (matches || cr.DeletionTimestamp != nil):
			owned = append(owned, cr)
		case ref != nil && ref.UID == set.UID:
			errs = append(errs, ignoreNotFound(patchOwnerRefs(ctx, rest, "controllerrevisions", cr, withoutOwner(cr.OwnerReferences, set.UID))))
		case ref == nil && matches && cr.DeletionTimestamp == nil && set.DeletionTimestamp == nil:
			if err := a.check(ctx); err != nil {
				continue
			}
			refs := append(slices.Clone(cr.OwnerReferences), controllerRef(statefulSetKind, &set.ObjectMeta))
			if err := patchOwnerRefs(ctx, rest, "controllerrevisions", cr, refs); err != nil {
				errs = append(errs, ignoreNotFound(err))
				continue
			}
			out := cr.DeepCopy()
			out.OwnerReferences = refs
			owned = append(owned, out)
		}
	}
	return owned, errors.Join(errs...)
}
