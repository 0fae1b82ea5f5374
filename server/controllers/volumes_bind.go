package controllers

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// bind binds a Pending claim to the volume it names, the volume reserved
// or made for it, or the best free volume that satisfies it; without
// one it stays Pending. Each step is a write the next sync finds done,
// and the volume is claimed first, at its cached resourceVersion, so two
// claims never get one volume.
func (c *VolumeController) bind(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	pv, err := c.volumeFor(claim)
	if err != nil || pv == nil {
		return err
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != claim.UID {
		out := pv.DeepCopy()
		out.Spec.ClaimRef = claimRef(claim)
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		if ref == nil {
			out.Annotations[annBoundByController] = "yes"
		}
		if pv, err = c.client.CoreV1().PersistentVolumes().Update(ctx, out, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	if pv, err = c.setVolumePhase(ctx, pv, corev1.VolumeBound); pv == nil || err != nil {
		return err
	}
	if claim.Spec.VolumeName != pv.Name || claim.Annotations[annBindCompleted] != "yes" {
		out := claim.DeepCopy()
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		if out.Spec.VolumeName == "" {
			out.Annotations[annBoundByController] = "yes"
		}
		out.Annotations[annBindCompleted] = "yes"
		out.Spec.VolumeName = pv.Name
		if claim, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, out, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	out := claim.DeepCopy()
	out.Status.Phase = corev1.ClaimBound
	out.Status.Capacity = pv.Spec.Capacity.DeepCopy()
	out.Status.AccessModes = slices.Clone(pv.Spec.AccessModes)
	_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	if err == nil {
		c.lg.Info("claim bound", "claim", claim.Namespace+"/"+claim.Name, "volume", pv.Name)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// volumeFor picks the volume for a Pending claim: the one it names (if
// free or made for it), else one reserved or made for it, else the
// smallest free one that satisfies it. Nil when there is none.
func (c *VolumeController) volumeFor(claim *corev1.PersistentVolumeClaim) (*corev1.PersistentVolume, error) {
	if name := claim.Spec.VolumeName; name != "" {
		pv, err := c.volumes.Get(name)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil || !reservedFor(pv, claim) && pv.Spec.ClaimRef != nil {
			return nil, err
		}
		return pv, nil
	}
	pvs, err := c.volumes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var best *corev1.PersistentVolume
	for _, pv := range pvs {
		if pv.DeletionTimestamp != nil {
			continue
		}
		if reservedFor(pv, claim) {
			return pv, nil
		}
		if pv.Spec.ClaimRef != nil || !satisfies(pv, claim) {
			continue
		}
		if best == nil || pv.Spec.Capacity.Storage().Cmp(*best.Spec.Capacity.Storage()) < 0 {
			best = pv
		}
	}
	return best, nil
}

// reservedFor tells whether pv's claimRef names claim: bound to it (same
// uid) or made for it (no uid yet).
func reservedFor(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) bool {
	ref := pv.Spec.ClaimRef
	return ref != nil && ref.Namespace == claim.Namespace && ref.Name == claim.Name &&
		(ref.UID == "" || ref.UID == claim.UID)
}

// satisfies tells whether a free volume meets a claim: the same storage
// class and volume mode, every access mode asked for, at least the
// storage requested, and labels the claim's selector matches.
func satisfies(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) bool {
	if volumeClassName(pv) != claimClassName(claim) || modeOf(pv.Spec.VolumeMode) != modeOf(claim.Spec.VolumeMode) {
		return false
	}
	for _, m := range claim.Spec.AccessModes {
		if !slices.Contains(pv.Spec.AccessModes, m) {
			return false
		}
	}
	want := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if pv.Spec.Capacity.Storage().Cmp(want) < 0 {
		return false
	}
	if claim.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(claim.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pv.Labels)) {
			return false
		}
	}
	return true
}

func volumeClassName(pv *corev1.PersistentVolume) string {
	if class, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return class
	}
	return pv.Spec.StorageClassName
}

func claimClassName(claim *corev1.PersistentVolumeClaim) string {
	if class, ok := claim.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return class
	}
	if claim.Spec.StorageClassName == nil {
		return ""
	}
	return *claim.Spec.StorageClassName
}

// modeOf is a volume mode, Filesystem when unset.
func modeOf(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// claimRef is the reference a bound volume keeps to its claim.
func claimRef(claim *corev1.PersistentVolumeClaim) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		Kind: "PersistentVolumeClaim", APIVersion: "v1",
		Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
	}
}
