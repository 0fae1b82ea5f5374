package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
)

// revisionHashLabel labels a ControllerRevision with the hash in its
// name, as upstream controllers do.
const revisionHashLabel = "controller.kubernetes.io/hash"

// setHistory is the pair of revisions a StatefulSet rolls between: the
// one its current pods run and the one its spec asks for (the same when
// no rollout is under way).
type setHistory struct {
	current, update *appsv1.ControllerRevision
	// currentTemplate is the pod template of current.
	currentTemplate *corev1.PodTemplateSpec
	collisionCount  int32
}

// revisionsFor finds or makes the ControllerRevision of set's template,
// and finds the one named by status.currentRevision. A template equal to
// an older revision's (a rollback) renumbers that revision as the newest
// instead of making a new one.
func (c *StatefulSetController) revisionsFor(ctx context.Context, set *appsv1.StatefulSet, revisions []*appsv1.ControllerRevision) (*setHistory, error) {
	sorted := slices.Clone(revisions)
	slices.SortFunc(sorted, compareRevisions)
	next := int64(1)
	if n := len(sorted); n > 0 {
		next = sorted[n-1].Revision + 1
	}
	h := &setHistory{collisionCount: ptrValue(set.Status.CollisionCount)}
	update, err := c.updateRevision(ctx, set, sorted, next, h)
	if err != nil {
		return nil, err
	}
	h.update, h.current = update, update
	h.currentTemplate = &set.Spec.Template
	for _, cr := range sorted {
		if cr.Name == set.Status.CurrentRevision && cr.Name != update.Name {
			t, err := revisionTemplate(cr)
			if err != nil {
				break // an unreadable revision: roll everything to update
			}
			h.current, h.currentTemplate = cr, t
		}
	}
	return h, nil
}

// updateRevision returns the revision of set's template, renumbered to
// next if it is not the newest, or creates it.
func (c *StatefulSetController) updateRevision(ctx context.Context, set *appsv1.StatefulSet, sorted []*appsv1.ControllerRevision, next int64, h *setHistory) (*appsv1.ControllerRevision, error) {
	for i := len(sorted) - 1; i >= 0; i-- {
		if t, err := revisionTemplate(sorted[i]); err == nil && apiequality.Semantic.DeepEqual(t, &set.Spec.Template) {
			if i == len(sorted)-1 {
				return sorted[i], nil
			}
			return c.renumber(ctx, sorted[i], next)
		}
	}
	cr, err := newSetRevision(set, next, set.Status.CollisionCount)
	if err != nil {
		return nil, err
	}
	revs := c.client.AppsV1().ControllerRevisions(set.Namespace)
	out, err := revs.Create(ctx, cr, metav1.CreateOptions{})
	if err == nil {
		return out, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	// A revision of this name exists: ours (the cache had not shown it
	// yet) or a hash collision, which the next collision count avoids.
	existing, getErr := revs.Get(ctx, cr.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, getErr
	}
	if t, tErr := revisionTemplate(existing); tErr == nil && metav1.IsControlledBy(existing, set) && apiequality.Semantic.DeepEqual(t, &set.Spec.Template) {
		return existing, nil
	}
	h.collisionCount++
	out2 := set.DeepCopy()
	out2.Status.CollisionCount = &h.collisionCount
	if _, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, out2, metav1.UpdateOptions{}); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("controllerrevision %q: hash collision, collision count now %d", cr.Name, h.collisionCount)
}

func (c *StatefulSetController) renumber(ctx context.Context, cr *appsv1.ControllerRevision, revision int64) (*appsv1.ControllerRevision, error) {
	out := cr.DeepCopy()
	out.Revision = revision
	return c.client.AppsV1().ControllerRevisions(cr.Namespace).Update(ctx, out, metav1.UpdateOptions{})
}

// newSetRevision snapshots set's template as revision number revision,
// named after set and the hash of the snapshot.
func newSetRevision(set *appsv1.StatefulSet, revision int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	data, err := templatePatch(&set.Spec.Template)
	if err != nil {
		return nil, err
	}
	hash := revisionHash(data, collisionCount)
	lbls := maps(set.Spec.Template.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[revisionHashLabel] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            set.Name + "-" + hash,
			Namespace:       set.Namespace,
			Labels:          lbls,
			OwnerReferences: []metav1.OwnerReference{controllerRef(statefulSetKind, &set.ObjectMeta)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}, nil
}

// revisionTemplate reads the pod template back from a revision's data.
func revisionTemplate(cr *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var patch struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(cr.Data.Raw, &patch); err != nil {
		return nil, fmt.Errorf("controllerrevision %q: %w", cr.Name, err)
	}
	return &patch.Spec.Template, nil
}

// revisionHash is the FNV-32a hash of a revision's data and collision
// count in the safe alphabet of generated names.
func revisionHash(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

func compareRevisions(a, b *appsv1.ControllerRevision) int {
	if a.Revision != b.Revision {
		if a.Revision < b.Revision {
			return -1
		}
		return 1
	}
	return cmpString(a.Name, b.Name)
}

// truncateHistory deletes the oldest revisions beyond
// spec.revisionHistoryLimit, never one a pod runs nor the current or
// update revision.
func (c *StatefulSetController) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, h *setHistory, pods []*corev1.Pod, revisions []*appsv1.ControllerRevision) error {
	live := map[string]bool{h.current.Name: true, h.update.Name: true}
	for _, p := range pods {
		live[p.Labels[appsv1.ControllerRevisionHashLabelKey]] = true
	}
	var old []*appsv1.ControllerRevision
	for _, cr := range revisions {
		if !live[cr.Name] && cr.DeletionTimestamp == nil {
			old = append(old, cr)
		}
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	if len(old) <= limit {
		return nil
	}
	slices.SortFunc(old, compareRevisions)
	revs := c.client.AppsV1().ControllerRevisions(set.Namespace)
	for _, cr := range old[:len(old)-limit] {
		err := revs.Delete(ctx, cr.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cr.UID}})
		if ignoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}
