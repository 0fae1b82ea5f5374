package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/registry"
)

// startVolumes runs a VolumeController on e.
func startVolumes(e *env) {
	e.t.Helper()
	f := e.factory.Core().V1()
	c, err := NewVolumeController(e.client, f.PersistentVolumeClaims(), f.PersistentVolumes(), f.Pods(), e.lg, VolumeOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })
}

func (e *env) createClaim(name, size string, class *string) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: class,
		},
	}
	out, err := e.client.CoreV1().PersistentVolumeClaims("default").Create(e.ctx, c, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create claim %q: %v", name, err)
	}
	return out
}

func (e *env) createVolume(name, size, class string, policy corev1.PersistentVolumeReclaimPolicy) {
	e.t.Helper()
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/" + name}},
			StorageClassName:              class,
			PersistentVolumeReclaimPolicy: policy,
		},
	}
	if _, err := e.client.CoreV1().PersistentVolumes().Create(e.ctx, v, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create volume %q: %v", name, err)
	}
}

// claimGone waits until the claim no longer exists.
func (e *env) claimGone(name string) {
	e.t.Helper()
	e.eventually("claim "+name+" removed", func() error {
		c, err := e.client.CoreV1().PersistentVolumeClaims("default").Get(e.ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there, finalizers %v, deleting since %v", c.Finalizers, c.DeletionTimestamp)
	})
}

// claimBound waits until the claim is Bound and returns it.
func (e *env) claimBound(name string) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	var bound *corev1.PersistentVolumeClaim
	e.eventually("claim "+name+" bound", func() error {
		c, err := e.client.CoreV1().PersistentVolumeClaims("default").Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("claim is %s", c.Status.Phase)
		}
		bound = c
		return nil
	})
	return bound
}

func (e *env) deleteClaim(name string) {
	e.t.Helper()
	if err := e.client.CoreV1().PersistentVolumeClaims("default").Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete claim %q: %v", name, err)
	}
}

func TestVolumeClaimProtection(t *testing.T) {
	e := newEnv(t)
	startVolumes(e)
	used := e.createClaim("used", "1Gi", nil)
	if !slices.Contains(used.Finalizers, registry.PVCProtectionFinalizer) {
		t.Fatalf("new claim finalizers = %v, want %s", used.Finalizers, registry.PVCProtectionFinalizer)
	}
	e.createClaim("unused", "1Gi", nil)
	e.createPod("user", nil, func(p *corev1.Pod) {
		p.Spec.NodeName = "node-1"
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "used"},
		}}}
	})
	e.setPodStatus("user", corev1.PodRunning, "10.42.0.9", true, 0)

	// The claim nobody uses goes at once; the one a running pod uses
	// stays, marked for deletion, as long as the pod runs.
	e.deleteClaim("used")
	e.deleteClaim("unused")
	e.claimGone("unused")
	c, err := e.client.CoreV1().PersistentVolumeClaims("default").Get(e.ctx, "used", metav1.GetOptions{})
	if err != nil || c.DeletionTimestamp == nil || !slices.Contains(c.Finalizers, registry.PVCProtectionFinalizer) {
		t.Fatalf("claim in use = %+v, %v; want it kept, deleting, with its finalizer", c.ObjectMeta, err)
	}
	e.setPodStatus("user", corev1.PodSucceeded, "", false, 0)
	e.claimGone("used")
}

func TestVolumeBinding(t *testing.T) {
	e := newEnv(t)
	startVolumes(e)
	e.createVolume("small", "1Gi", "", "")
	e.createVolume("mid", "5Gi", "", "")
	e.createVolume("big", "10Gi", "", "")
	e.createVolume("fast", "5Gi", "fast", corev1.PersistentVolumeReclaimDelete)
	pvs := e.client.CoreV1().PersistentVolumes()
	volume := func(name string) *corev1.PersistentVolume {
		t.Helper()
		v, err := pvs.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get volume %q: %v", name, err)
		}
		return v
	}
	phaseOf := func(name string, want corev1.PersistentVolumePhase) func() error {
		return func() error {
			if got := volume(name).Status.Phase; got != want {
				return fmt.Errorf("volume %s is %s, want %s", name, got, want)
			}
			return nil
		}
	}
	e.eventually("free volumes available", phaseOf("small", corev1.VolumeAvailable))

	// The smallest volume of the claim's class that is big enough.
	claim := e.createClaim("data", "2Gi", ptr(""))
	bound := e.claimBound("data")
	if q := bound.Status.Capacity[corev1.ResourceStorage]; bound.Spec.VolumeName != "mid" || q.String() != "5Gi" {
		t.Errorf("claim bound to %q with capacity %s, want mid, 5Gi", bound.Spec.VolumeName, q.String())
	}
	e.eventually("volume bound", phaseOf("mid", corev1.VolumeBound))
	if ref := volume("mid").Spec.ClaimRef; ref == nil || ref.UID != claim.UID || ref.Name != "data" {
		t.Errorf("mid claimRef = %+v, want the claim data (uid %s)", ref, claim.UID)
	}
	for _, name := range []string{"small", "big"} {
		if v := volume(name); v.Spec.ClaimRef != nil || v.Status.Phase != corev1.VolumeAvailable {
			t.Errorf("volume %s = %s, claimRef %+v; want Available and free", name, v.Status.Phase, v.Spec.ClaimRef)
		}
	}

	// A Bound volume is protected; once its claim is gone it is Released
	// (Retain), and then it may go.
	if err := pvs.Delete(e.ctx, "mid", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deleteClaim("data")
	e.claimGone("data")
	e.eventually("released volume removed", func() error {
		_, err := pvs.Get(e.ctx, "mid", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.Join(err, errors.New("volume mid still there"))
	})

	// A claim whose volume goes regardless (finalizer removed by hand)
	// is Lost.
	if c := e.createClaim("orphan", "4Gi", nil); c.Spec.VolumeName != "" {
		t.Fatalf("new claim names volume %q", c.Spec.VolumeName)
	}
	if c := e.claimBound("orphan"); c.Spec.VolumeName != "big" {
		t.Fatalf("claim orphan bound to %q, want big", c.Spec.VolumeName)
	}
	big := volume("big")
	big.Finalizers = nil
	if _, err := pvs.Update(e.ctx, big, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pvs.Delete(e.ctx, "big", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("claim lost", func() error {
		c, err := e.client.CoreV1().PersistentVolumeClaims("default").Get(e.ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase != corev1.ClaimLost {
			return fmt.Errorf("claim is %s", c.Status.Phase)
		}
		return nil
	})

	// A volume whose policy is Delete goes with its claim.
	e.createClaim("quick", "1Gi", ptr("fast"))
	if c := e.claimBound("quick"); c.Spec.VolumeName != "fast" {
		t.Errorf("claim quick bound to %q, want fast", c.Spec.VolumeName)
	}
	e.deleteClaim("quick")
	e.eventually("fast deleted", func() error {
		_, err := pvs.Get(e.ctx, "fast", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.Join(err, errors.New("volume fast still there"))
	})
}
