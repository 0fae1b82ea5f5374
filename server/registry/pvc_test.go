package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validPVC() *corev1.PersistentVolumeClaim {
	return stored(pvcResource, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-web-0", Namespace: "default"},
		Spec:       claimTemplate("").Spec,
	})
}

func storage(q string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(q)}
}

func TestPVCCreate(t *testing.T) {
	c := validPVC()
	if c.Status.Phase != corev1.ClaimPending {
		t.Errorf("status.phase = %q, want Pending", c.Status.Phase)
	}
	if c.Spec.VolumeMode == nil || *c.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("spec.volumeMode = %v, want Filesystem", c.Spec.VolumeMode)
	}
	if diff := cmp.Diff([]string{PVCProtectionFinalizer}, c.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
	// A client's status is dropped, a finalizer is not added twice.
	c.Status.Phase = corev1.ClaimBound
	pvcResource.PrepareForCreate(c)
	if c.Status.Phase != corev1.ClaimPending || len(c.Finalizers) != 1 {
		t.Errorf("again: phase %q, finalizers %v; want Pending, one finalizer", c.Status.Phase, c.Finalizers)
	}
}

func TestPVCValidation(t *testing.T) {
	runValidation(t, pvcResource, validPVC, []validationCase[*corev1.PersistentVolumeClaim]{
		{name: "valid"},
		{"name is a DNS subdomain", func(c *corev1.PersistentVolumeClaim) { c.Name = "Data" }, []string{errKey(invalid, "metadata.name")}},
		{"namespace required", func(c *corev1.PersistentVolumeClaim) { c.Namespace = "" }, []string{errKey(required, "metadata.namespace")}},
		{"access modes required", func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = nil },
			[]string{errKey(required, "spec.accessModes")}},
		{"access mode known", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadSometimes"}
		},
			[]string{errKey(notSupported, "spec.accessModes[0]")}},
		{"ReadWriteOncePod alone", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany}
		}, []string{errKey(forbidden, "spec.accessModes")}},
		{"storage required", func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = nil },
			[]string{errKey(required, "spec.resources[storage]")}},
		{"storage positive", func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = storage("0") },
			[]string{errKey(invalid, "spec.resources[storage]")}},
		{"storage not negative", func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = storage("-1Gi") },
			[]string{errKey(invalid, "spec.resources[storage]")}},
		{"other requests checked", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests["bad name!"] = resource.MustParse("1")
		},
			[]string{errKey(invalid, "spec.resources.requests[bad name!]")}},
		{"storageClassName a DNS subdomain", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptrTo("Fast_SSD") },
			[]string{errKey(invalid, "spec.storageClassName")}},
		{"storageClassName empty", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptrTo("") }, nil},
		{"volumeMode known", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeMode("Tape")) },
			[]string{errKey(notSupported, "spec.volumeMode")}},
		{"block", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeBlock) }, nil},
		{"selector", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}
		}, []string{errKey(invalid, "spec.selector")}},
	})
}

func TestPVCUpdate(t *testing.T) {
	bound := func() *corev1.PersistentVolumeClaim {
		c := validPVC()
		c.Spec.VolumeName = "pv-1"
		c.Status.Phase = corev1.ClaimBound
		return c
	}
	runUpdate(t, pvcResource, false, validPVC, []validationCase[*corev1.PersistentVolumeClaim]{
		{"labels", func(c *corev1.PersistentVolumeClaim) { c.Labels = map[string]string{"a": "b"} }, nil},
		{"volumeName set once", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-1" }, nil},
		{"access modes immutable", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}, []string{errKey(forbidden, "spec")}},
		{"storage of a pending claim immutable", func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = storage("2Gi") },
			[]string{errKey(forbidden, "spec")}},
	})
	runUpdate(t, pvcResource, false, bound, []validationCase[*corev1.PersistentVolumeClaim]{
		{"bound claim grows", func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = storage("2Gi") }, nil},
		{"bound claim does not shrink", func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = storage("512Mi") },
			[]string{errKey(forbidden, "spec.resources.requests.storage")}},
		{"volumeName kept", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-2" }, []string{errKey(forbidden, "spec")}},
	})
}

func TestPVCStatusUpdate(t *testing.T) {
	runUpdate(t, pvcResource, true, validPVC, []validationCase[*corev1.PersistentVolumeClaim]{
		{"bound", func(c *corev1.PersistentVolumeClaim) {
			c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: storage("1Gi"),
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
		}, nil},
		{"phase known", func(c *corev1.PersistentVolumeClaim) { c.Status.Phase = "Happy" }, []string{errKey(notSupported, "status.phase")}},
		{"spec kept", func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = nil }, nil},
	})
}

func TestPVCRow(t *testing.T) {
	c := validPVC()
	c.Spec.StorageClassName = ptrTo("fast")
	got := pvcRow(c, testNow)
	want := []interface{}{"data-web-0", "Pending", "", "", "", "fast", "<unset>", "60m", "Filesystem"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pending row (-want +got):\n%s", diff)
	}
	c.Spec.VolumeName = "pv-1"
	c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: storage("5Gi"),
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce}}
	c.DeletionTimestamp = ptrTo(ago(0))
	got = pvcRow(c, testNow)
	want = []interface{}{"data-web-0", "Terminating", "pv-1", "5Gi", "RWO,RWX", "fast", "<unset>", "60m", "Filesystem"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bound row (-want +got):\n%s", diff)
	}
}
