package controllers

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// This file holds what the controllers that keep a history of their pod
// template in ControllerRevisions (DaemonSets, StatefulSets) share:
// the revision data, claiming revisions, creating one under a hashed
// name, and trimming old ones.

// errRevisionCollision reports that the name a revision hashes to is taken
// by a revision with other data: the owner must count a collision and
// try again with the next hash.
var errRevisionCollision = errors.New("controllers: controller revision name taken by another revision")

// templatePatch is the data of a revision of template as upstream writes
// it and `kubectl rollout undo` applies it: a strategic merge patch that
// replaces spec.template. Equal templates give equal bytes (map keys are
// sorted).
func templatePatch(template *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(template)
	if err != nil {
		return nil, err
	}
	var t map[string]any
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	t["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": t}})
}

// revisionMatches reports whether rev holds data.
func revisionMatches(rev *appsv1.ControllerRevision, data []byte) bool {
	return bytes.Equal(rev.Data.Raw, data)
}

// claimRevisions returns the revisions in owner's namespace that owner
// (of kind gvk) controls, after adopting orphans sel matches and
// releasing owned ones it no longer matches. Adoption happens only while
// owner is not being deleted. The returned revisions are the cache's and
// must not be modified.
func claimRevisions(ctx context.Context, client kubernetes.Interface, lister appslisters.ControllerRevisionLister,
	gvk schema.GroupVersionKind, owner *metav1.ObjectMeta, sel labels.Selector) ([]*appsv1.ControllerRevision, error) {
	all, err := lister.ControllerRevisions(owner.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	rest := client.AppsV1().RESTClient()
	var owned []*appsv1.ControllerRevision
	var errs []error
	for _, rev := range all {
		ref := metav1.GetControllerOf(rev)
		matches := sel.Matches(labels.Set(rev.Labels))
		switch {
		case ref != nil && ref.UID == owner.UID && matches:
			owned = append(owned, rev)
		case ref != nil && ref.UID == owner.UID:
			errs = append(errs, ignoreNotFound(patchOwnerRefs(ctx, rest, "controllerrevisions", rev, withoutOwner(rev.OwnerReferences, owner.UID))))
		case ref == nil && matches && owner.DeletionTimestamp == nil && rev.DeletionTimestamp == nil:
			refs := append(slices.Clone(rev.OwnerReferences), controllerRef(gvk, owner))
			if err := patchOwnerRefs(ctx, rest, "controllerrevisions", rev, refs); err != nil {
				errs = append(errs, ignoreNotFound(err))
				continue
			}
			out := rev.DeepCopy()
			out.OwnerReferences = refs
			owned = append(owned, out)
		}
	}
	return owned, errors.Join(errs...)
}

// newRevision builds the revision of template for owner (of kind gvk):
// named owner-HASH, labelled with the template's labels plus
// controller-revision-hash, annotated with owner's annotations (the
// change cause `kubectl rollout history` prints).
func newRevision(gvk schema.GroupVersionKind, owner *metav1.ObjectMeta, template *corev1.PodTemplateSpec,
	collisionCount *int32, revision int64) (*appsv1.ControllerRevision, error) {
	data, err := templatePatch(template)
	if err != nil {
		return nil, err
	}
	hash := computeHash(template, collisionCount)
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            owner.Name + "-" + hash,
			Namespace:       owner.Namespace,
			Labels:          cloneWith(template.Labels, appsv1.ControllerRevisionHashLabelKey, hash),
			Annotations:     maps(owner.Annotations),
			OwnerReferences: []metav1.OwnerReference{controllerRef(gvk, owner)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}, nil
}

// createRevision creates rev. A revision of that name with the same data
// and controller is returned as it is (an earlier sync made it); one with
// other data is a hash collision, errRevisionCollision.
func createRevision(ctx context.Context, client kubernetes.Interface, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	revs := client.AppsV1().ControllerRevisions(rev.Namespace)
	out, err := revs.Create(ctx, rev, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return out, err
	}
	existing, err := revs.Get(ctx, rev.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	ref, want := metav1.GetControllerOf(existing), metav1.GetControllerOf(rev)
	if ref != nil && want != nil && ref.UID == want.UID && revisionMatches(existing, rev.Data.Raw) {
		return existing, nil
	}
	return nil, fmt.Errorf("revision %q: %w", rev.Name, errRevisionCollision)
}

// setRevisionNumber gives rev the number n (a revision rolled back to
// becomes the newest).
func setRevisionNumber(ctx context.Context, client kubernetes.Interface, rev *appsv1.ControllerRevision, n int64) (*appsv1.ControllerRevision, error) {
	out := rev.DeepCopy()
	out.Revision = n
	return client.AppsV1().ControllerRevisions(out.Namespace).Update(ctx, out, metav1.UpdateOptions{})
}

// maxRevision is the highest revision number of revs, 0 for none.
func maxRevision(revs []*appsv1.ControllerRevision) int64 {
	var n int64
	for _, r := range revs {
		n = max(n, r.Revision)
	}
	return n
}

// truncateHistory deletes the oldest of old beyond limit, sparing those
// whose hash label is in live (pods still run them).
func truncateHistory(ctx context.Context, client kubernetes.Interface, old []*appsv1.ControllerRevision, limit int, live map[string]bool) error {
	excess := len(old) - limit
	if excess <= 0 {
		return nil
	}
	sorted := slices.Clone(old)
	slices.SortFunc(sorted, func(a, b *appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	var errs []error
	for _, rev := range sorted {
		if excess == 0 {
			break
		}
		if live[rev.Labels[appsv1.ControllerRevisionHashLabelKey]] {
			continue
		}
		err := client.AppsV1().ControllerRevisions(rev.Namespace).Delete(ctx, rev.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &rev.UID},
		})
		errs = append(errs, ignoreNotFound(err))
		excess--
	}
	return errors.Join(errs...)
}
