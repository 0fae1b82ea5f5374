package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// podClaim decides which pods one controller (a ReplicationController,
// ReplicaSet or Job) controls: its own pods its selector still matches,
// and the orphans it matches, which it adopts. Its pods that no longer
// match are released.
type podClaim struct {
	client   kubernetes.Interface
	lg       *slog.Logger
	gvk      schema.GroupVersionKind
	owner    *metav1.ObjectMeta
	selector labels.Selector
	// fetch reads the owner from the API, past the cache: only a live
	// owner that is not being deleted may adopt (the cache may lag behind
	// a delete).
	fetch func(ctx context.Context) (metav1.Object, error)
	// finalizer, when set, is added to each adopted pod that has not
	// finished, and taken off each released pod.
	finalizer string
}

// claim returns the pods of pods the owner controls, adopting and
// releasing on the way. The adopted pods are returned as patched.
func (c *podClaim) claim(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var owned []*corev1.Pod
	var errs []error
	canAdopt := func() error { return c.checkAdoptable(ctx) }
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		matches := c.selector.Matches(labels.Set(pod.Labels))
		switch {
		case ref != nil && ref.UID == c.owner.UID:
			if matches || pod.DeletionTimestamp != nil {
				owned = append(owned, pod)
				continue
			}
			errs = append(errs, c.release(ctx, pod))
		case ref == nil && matches && pod.DeletionTimestamp == nil:
			if err := canAdopt(); err != nil {
				canAdopt = func() error { return err }
				continue
			}
			canAdopt = func() error { return nil }
			adopted, err := c.adopt(ctx, pod)
			if err != nil {
				errs = append(errs, err)
			} else if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	return owned, errors.Join(errs...)
}

func (c *podClaim) checkAdoptable(ctx context.Context) error {
	fresh, err := c.fetch(ctx)
	if err != nil {
		return err
	}
	if fresh.GetUID() != c.owner.UID {
		return fmt.Errorf("%s %q was replaced", c.gvk.Kind, c.owner.Name)
	}
	if fresh.GetDeletionTimestamp() != nil {
		return fmt.Errorf("%s %q is being deleted", c.gvk.Kind, c.owner.Name)
	}
	return nil
}

// adopt makes the owner pod's controller. A finished pod gets no
// finalizer: it may have been counted already by an earlier owner.
func (c *podClaim) adopt(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	f := metaPatchFields{}
	refs := append(slices.Clone(pod.OwnerReferences), controllerRef(c.gvk, c.owner))
	f.OwnerReferences = &refs
	fins := pod.Finalizers
	finished := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if c.finalizer != "" && !finished && !slices.Contains(fins, c.finalizer) {
		fins = append(slices.Clone(fins), c.finalizer)
		f.Finalizers = &fins
	}
	if err := patchMeta(ctx, c.client.CoreV1().RESTClient(), "pods", pod, f); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	c.lg.Debug("adopted pod", "owner", c.owner.Namespace+"/"+c.owner.Name, "pod", pod.Name)
	out := pod.DeepCopy()
	out.OwnerReferences, out.Finalizers = refs, fins
	return out, nil
}

func (c *podClaim) release(ctx context.Context, pod *corev1.Pod) error {
	refs := withoutOwner(pod.OwnerReferences, c.owner.UID)
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	f := metaPatchFields{OwnerReferences: &refs}
	if c.finalizer != "" && slices.Contains(pod.Finalizers, c.finalizer) {
		fins := slices.DeleteFunc(slices.Clone(pod.Finalizers), func(s string) bool { return s == c.finalizer })
		if fins == nil {
			fins = []string{}
		}
		f.Finalizers = &fins
	}
	err := patchMeta(ctx, c.client.CoreV1().RESTClient(), "pods", pod, f)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		c.lg.Debug("released pod", "owner", c.owner.Namespace+"/"+c.owner.Name, "pod", pod.Name)
	}
	return err
}
