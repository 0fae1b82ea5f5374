package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/registry"
)

// podKind is the group/version/kind of a Pod, as owner references name
// it.
var podKind = corev1.SchemeGroupVersion.WithKind("Pod")

// setClaimName is the name of the claim of template t for the pod at
// ordinal: TEMPLATE-SET-ORDINAL, as Kubernetes names it.
func setClaimName(set *appsv1.StatefulSet, template string, ordinal int) string {
	return template + "-" + set.Name + "-" + strconv.Itoa(ordinal)
}

// withClaims gives pod, the set's pod at ordinal, a volume per claim
// template that uses the pod's claim, in place of any template volume
// of the same name.
func withClaims(set *appsv1.StatefulSet, pod *corev1.Pod, ordinal int) {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return
	}
	pod.Spec.Volumes = registry.ClaimVolumes(set.Spec.VolumeClaimTemplates, pod.Spec.Volumes,
		func(t string) string { return setClaimName(set, t, ordinal) })
}

// newSetClaim is the claim of template t for the pod at ordinal: the
// template with the set's selector labels added.
func newSetClaim(set *appsv1.StatefulSet, t *corev1.PersistentVolumeClaim, ordinal int) *corev1.PersistentVolumeClaim {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: setClaimName(set, t.Name, ordinal), Namespace: set.Namespace,
			Labels: maps(t.Labels), Annotations: maps(t.Annotations),
		},
		Spec: *t.Spec.DeepCopy(),
	}
	if set.Spec.Selector != nil && len(set.Spec.Selector.MatchLabels) > 0 {
		if claim.Labels == nil {
			claim.Labels = map[string]string{}
		}
		for k, v := range set.Spec.Selector.MatchLabels {
			claim.Labels[k] = v
		}
	}
	return claim
}

// createClaims makes the missing claims of the pod at ordinal before the
// pod is made, as the claims cache shows them (a claim made meanwhile is
// found on create). A claim being deleted is an error: the pod waits for
// it to go and be made again.
func (c *StatefulSetController) createClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod, ordinal int) error {
	var errs []error
	claims := c.client.CoreV1().PersistentVolumeClaims(set.Namespace)
	for i := range set.Spec.VolumeClaimTemplates {
		claim := newSetClaim(set, &set.Spec.VolumeClaimTemplates[i], ordinal)
		got, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(claim.Name)
		switch {
		case apierrors.IsNotFound(err):
			claim.OwnerReferences = claimOwners(nil, set, pod, true)
			_, err := claims.Create(ctx, claim, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				c.rec.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s Pod %s in StatefulSet %s failed error: %v",
					claim.Name, pod.Name, set.Name, err)
				errs = append(errs, fmt.Errorf("create claim %q: %w", claim.Name, err))
				continue
			}
			c.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success",
				claim.Name, pod.Name, set.Name)
		case err != nil:
			errs = append(errs, fmt.Errorf("get claim %q: %w", claim.Name, err))
		case got.DeletionTimestamp != nil:
			errs = append(errs, fmt.Errorf("pvc %s is being deleted", claim.Name))
		}
	}
	return errors.Join(errs...)
}

// syncClaimOwners brings the owner references of pod's claims in line
// with the set's retention policy, as Kubernetes does: WhenDeleted=Delete
// makes the set own the claims of the pods in range, WhenScaled=Delete
// makes a scaled-down pod own its claims, so that the garbage collector
// removes them with their owner. inRange tells whether the pod's ordinal
// is within the replica count. A claim with another controller is left
// alone.
func (c *StatefulSetController) syncClaimOwners(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod, inRange bool) error {
	_, ordinal, ok := podOrdinal(pod)
	if !ok || len(set.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	var errs []error
	claims := c.client.CoreV1().PersistentVolumeClaims(set.Namespace)
	for _, t := range set.Spec.VolumeClaimTemplates {
		claim, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(setClaimName(set, t.Name, ordinal))
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		refs := claimOwners(claim.OwnerReferences, set, pod, inRange)
		if equality.Semantic.DeepEqual(refs, claim.OwnerReferences) {
			continue
		}
		out := claim.DeepCopy()
		out.OwnerReferences = refs
		if _, err := claims.Update(ctx, out, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// claimOwners is refs with the set's and the pod's references replaced
// by those the retention policy asks for; refs as they are when another
// controller owns the claim, or a reference names the set or pod with a
// stale uid (the garbage collector's business).
func claimOwners(refs []metav1.OwnerReference, set *appsv1.StatefulSet, pod *corev1.Pod, inRange bool) []metav1.OwnerReference {
	retain := appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	policy := set.Spec.PersistentVolumeClaimRetentionPolicy
	if policy == nil {
		policy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: retain, WhenScaled: retain}
	}
	isSet := func(r metav1.OwnerReference) bool {
		return r.APIVersion == statefulSetKind.GroupVersion().String() && r.Kind == statefulSetKind.Kind && r.Name == set.Name
	}
	isPod := func(r metav1.OwnerReference) bool {
		return r.APIVersion == "v1" && r.Kind == podKind.Kind && r.Name == pod.Name
	}
	keepAll := policy.WhenDeleted == retain && policy.WhenScaled == retain
	for _, r := range refs {
		stale := isSet(r) && r.UID != set.UID || isPod(r) && r.UID != pod.UID
		other := !isSet(r) && !isPod(r) && r.Controller != nil && *r.Controller
		if !keepAll && (stale || other) {
			return refs
		}
	}
	out := slices.DeleteFunc(slices.Clone(refs), func(r metav1.OwnerReference) bool { return isSet(r) || isPod(r) })
	scaledDown := !inRange && policy.WhenScaled != retain
	switch {
	case keepAll:
	case scaledDown && pod.UID != "":
		out = append(out, controllerRef(podKind, &pod.ObjectMeta))
	case !scaledDown && policy.WhenDeleted != retain:
		out = append(out, controllerRef(statefulSetKind, &set.ObjectMeta))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
