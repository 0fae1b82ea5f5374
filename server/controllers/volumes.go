package controllers

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/server/registry"
)

// Annotations the binder writes, as Kubernetes' volume controller does.
const (
	annBindCompleted     = "pv.kubernetes.io/bind-completed"
	annBoundByController = "pv.kubernetes.io/bound-by-controller"
)

// Keys of the volume controller's queue: a claim ("claim/NS/NAME") or a
// volume ("volume/NAME").
const (
	claimKeyPrefix  = "claim/"
	volumeKeyPrefix = "volume/"
)

// VolumeOptions tunes a VolumeController.
type VolumeOptions struct {
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// VolumeController keeps PersistentVolumeClaims and PersistentVolumes as
// Kubernetes' volume controllers do, for volumes made by hand (there is
// no provisioner):
//   - protection: a deleted claim keeps the kubernetes.io/pvc-protection
//     finalizer while a scheduled pod that has not finished uses it; a
//     deleted volume keeps kubernetes.io/pv-protection while it is Bound.
//   - binding: a volume with no claim is Available; a Pending claim binds
//     to the smallest Available volume of its storage class (none and ""
//     alike) that has its access modes, volume mode, size and selector,
//     or to the volume it names; both become Bound (claimRef, volumeName).
//   - release: a Bound volume whose claim is gone becomes Released, and
//     is deleted if its reclaim policy is Delete; a Bound claim whose
//     volume is gone becomes Lost.
type VolumeController struct {
	client  kubernetes.Interface
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	pods    corelisters.PodLister
	opts    VolumeOptions
	lg      *slog.Logger
	loop    *loop
}

// NewVolumeController returns a VolumeController fed by the given
// informers. lg may be nil.
func NewVolumeController(client kubernetes.Interface, claims coreinformers.PersistentVolumeClaimInformer,
	volumes coreinformers.PersistentVolumeInformer, pods coreinformers.PodInformer, lg *slog.Logger, opts VolumeOptions,
) (*VolumeController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lg = lg.With("component", "volume-controller")
	c := &VolumeController{
		client: client, claims: claims.Lister(), volumes: volumes.Lister(), pods: pods.Lister(),
		opts: opts, lg: lg,
	}
	c.loop = newLoop("volume", lg, c.sync)
	enqueue := func(prefix string) func(any) {
		return func(obj any) {
			if key, ok := keyOf(obj); ok {
				c.loop.add(prefix + key)
			}
		}
	}
	err := c.loop.watch(
		handler{claims.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue(claimKeyPrefix),
			UpdateFunc: func(_, obj any) { enqueue(claimKeyPrefix)(obj) },
			DeleteFunc: c.claimDeleted,
		}},
		handler{volumes.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue(volumeKeyPrefix),
			UpdateFunc: func(_, obj any) { enqueue(volumeKeyPrefix)(obj) },
			DeleteFunc: c.volumeDeleted,
		}},
		handler{pods.Informer(), cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) { c.podChanged(obj) },
			DeleteFunc: c.podChanged,
		}},
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs claims and volumes with workers goroutines until ctx ends.
func (c *VolumeController) Run(ctx context.Context, workers int) error {
	return c.loop.run(ctx, workers)
}

// claimDeleted requeues the volumes that refer to a claim that is gone,
// to release them; the claim may have gone before naming its volume.
func (c *VolumeController) claimDeleted(obj any) {
	claim, ok := untombstone(obj).(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	pvs, _ := c.volumes.List(labels.Everything())
	for _, pv := range pvs {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == claim.Namespace && ref.Name == claim.Name {
			c.loop.add(volumeKeyPrefix + pv.Name)
		}
	}
}

// volumeDeleted requeues the claim a volume that is gone was bound to,
// which is lost.
func (c *VolumeController) volumeDeleted(obj any) {
	if pv, ok := untombstone(obj).(*corev1.PersistentVolume); ok && pv.Spec.ClaimRef != nil {
		c.loop.add(claimKeyPrefix + pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name)
	}
}

// podChanged requeues the claims of a pod that finished or is gone: they
// may have been waiting for it to let go.
func (c *VolumeController) podChanged(obj any) {
	pod, ok := untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			c.loop.add(claimKeyPrefix + pod.Namespace + "/" + v.PersistentVolumeClaim.ClaimName)
		}
	}
}

func (c *VolumeController) sync(ctx context.Context, key string) error {
	if name, ok := strings.CutPrefix(key, volumeKeyPrefix); ok {
		return c.syncVolume(ctx, name)
	}
	ns, name, err := cache.SplitMetaNamespaceKey(strings.TrimPrefix(key, claimKeyPrefix))
	if err != nil {
		return nil
	}
	return c.syncClaim(ctx, ns, name)
}

// syncClaim lets a deleted claim go once no pod uses it, and binds a
// Pending one.
func (c *VolumeController) syncClaim(ctx context.Context, ns, name string) error {
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if claim.DeletionTimestamp != nil {
		return c.releaseClaim(ctx, claim)
	}
	switch claim.Status.Phase {
	case corev1.ClaimBound:
		return c.checkBound(ctx, claim)
	case corev1.ClaimLost:
		return nil
	}
	return c.bind(ctx, claim)
}

// checkBound marks a Bound claim Lost once its volume is gone (read from
// the API, past the cache), as Kubernetes does: its data is no more.
func (c *VolumeController) checkBound(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if _, err := c.volumes.Get(claim.Spec.VolumeName); !apierrors.IsNotFound(err) {
		return err
	}
	_, err := c.client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	out := claim.DeepCopy()
	out.Status.Phase = corev1.ClaimLost
	_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// releaseClaim removes the pvc-protection finalizer of a deleted claim
// that no pod uses.
func (c *VolumeController) releaseClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if !slices.Contains(claim.Finalizers, registry.PVCProtectionFinalizer) {
		return nil
	}
	inUse, err := c.claimInUse(claim)
	if err != nil || inUse {
		return err
	}
	out := claim.DeepCopy()
	out.Finalizers = slices.DeleteFunc(out.Finalizers, func(f string) bool { return f == registry.PVCProtectionFinalizer })
	_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		c.lg.Debug("claim protection removed", "claim", claim.Namespace+"/"+claim.Name)
	}
	return err
}

// claimInUse tells whether a scheduled pod that has not finished uses
// the claim, as Kubernetes' pvc-protection controller decides: a pod not
// yet scheduled cannot start with a claim being deleted.
func (c *VolumeController) claimInUse(claim *corev1.PersistentVolumeClaim) (bool, error) {
	pods, err := c.pods.Pods(claim.Namespace).List(labels.Everything())
	if err != nil {
		return false, err
	}
	for _, pod := range pods {
		if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim.Name {
				return true, nil
			}
		}
	}
	return false, nil
}

// syncVolume makes a free volume Available, releases one whose claim is
// gone (deleting it if its policy is Delete: minik deletes no data), and
// lets a deleted volume go once it is not Bound.
func (c *VolumeController) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	phase, err := c.volumePhase(ctx, pv)
	if err != nil {
		return err
	}
	if phase == corev1.VolumeReleased && pv.DeletionTimestamp == nil &&
		pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
		err := c.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pv.UID},
		})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if pv.Status.Phase != phase {
		if pv, err = c.setVolumePhase(ctx, pv, phase); pv == nil || err != nil {
			return err
		}
	}
	if pv.DeletionTimestamp != nil {
		return c.releaseVolume(ctx, pv)
	}
	return nil
}

// volumePhase is the phase pv should have: Available without a claim or
// while waiting for the claim it was made for, Bound while its claim
// exists, Released once that claim is gone (read from the API, past the
// cache, before a volume is let go).
func (c *VolumeController) volumePhase(ctx context.Context, pv *corev1.PersistentVolume) (corev1.PersistentVolumePhase, error) {
	ref := pv.Spec.ClaimRef
	switch {
	case ref == nil:
		return corev1.VolumeAvailable, nil
	case ref.UID == "":
		c.loop.add(claimKeyPrefix + ref.Namespace + "/" + ref.Name)
		return corev1.VolumeAvailable, nil
	case pv.Status.Phase == corev1.VolumeReleased:
		return corev1.VolumeReleased, nil
	}
	claim, err := c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || err == nil && claim.UID != ref.UID:
		return corev1.VolumeReleased, nil
	case err != nil:
		return "", err
	}
	if claim.Spec.VolumeName != pv.Name {
		// Reserved for the claim, which the claim's sync completes.
		c.loop.add(claimKeyPrefix + ref.Namespace + "/" + ref.Name)
	}
	return corev1.VolumeBound, nil
}

// releaseVolume removes the pv-protection finalizer of a deleted volume
// that is not Bound.
func (c *VolumeController) releaseVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Status.Phase == corev1.VolumeBound || !slices.Contains(pv.Finalizers, registry.PVProtectionFinalizer) {
		return nil
	}
	out := pv.DeepCopy()
	out.Finalizers = slices.DeleteFunc(out.Finalizers, func(f string) bool { return f == registry.PVProtectionFinalizer })
	_, err := c.client.CoreV1().PersistentVolumes().Update(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// setVolumePhase writes a volume's phase if it differs, and returns the
// volume as written (nil if it is gone).
func (c *VolumeController) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) (*corev1.PersistentVolume, error) {
	if pv.Status.Phase == phase {
		return pv, nil
	}
	out := pv.DeepCopy()
	out.Status.Phase = phase
	out.Status.LastPhaseTransitionTime = &metav1.Time{Time: c.opts.Now().Truncate(time.Second)}
	out, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return out, err
}
