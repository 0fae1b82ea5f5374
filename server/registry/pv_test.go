package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func validPV() *corev1.PersistentVolume {
	return stored(pvResource, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    storage("10Gi"),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/minik/pv-1"},
			},
		},
	})
}

// localSource is a local volume on node-a.
func localSource(v *corev1.PersistentVolume) {
	v.Spec.HostPath = nil
	v.Spec.Local = &corev1.LocalVolumeSource{Path: "/mnt/disk1"}
	v.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
			Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-a"},
		}}}},
	}}
}

// csiSource is a volume of a CSI driver.
func csiSource(v *corev1.PersistentVolume) {
	v.Spec.HostPath = nil
	v.Spec.CSI = &corev1.CSIPersistentVolumeSource{Driver: "disk.csi.example.com", VolumeHandle: "vol-1"}
}

func TestPVCreate(t *testing.T) {
	v := validPV()
	if v.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("reclaim policy = %q, want Retain", v.Spec.PersistentVolumeReclaimPolicy)
	}
	if v.Spec.VolumeMode == nil || *v.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("volumeMode = %v, want Filesystem", v.Spec.VolumeMode)
	}
	if v.Status.Phase != corev1.VolumePending {
		t.Errorf("phase = %q, want Pending", v.Status.Phase)
	}
	if diff := cmp.Diff([]string{PVProtectionFinalizer}, v.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
}

func TestPVValidation(t *testing.T) {
	runValidation(t, pvResource, validPV, []validationCase[*corev1.PersistentVolume]{
		{name: "valid"},
		{"local", localSource, nil},
		{"cluster-scoped", func(v *corev1.PersistentVolume) { v.Namespace = "default" }, []string{errKey(forbidden, "metadata.namespace")}},
		{"capacity required", func(v *corev1.PersistentVolume) { v.Spec.Capacity = nil }, []string{errKey(required, "spec.capacity")}},
		{"capacity is storage only", func(v *corev1.PersistentVolume) {
			v.Spec.Capacity[corev1.ResourceCPU] = v.Spec.Capacity[corev1.ResourceStorage]
		},
			[]string{errKey(notSupported, "spec.capacity[cpu]")}},
		{"capacity positive", func(v *corev1.PersistentVolume) { v.Spec.Capacity = storage("0") },
			[]string{errKey(invalid, "spec.capacity[storage]")}},
		{"access modes required", func(v *corev1.PersistentVolume) { v.Spec.AccessModes = nil }, []string{errKey(required, "spec.accessModes")}},
		{"reclaim policy known", func(v *corev1.PersistentVolume) { v.Spec.PersistentVolumeReclaimPolicy = "Keep" },
			[]string{errKey(notSupported, "spec.persistentVolumeReclaimPolicy")}},
		{"volumeMode known", func(v *corev1.PersistentVolume) { v.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeMode("Tape")) },
			[]string{errKey(notSupported, "spec.volumeMode")}},
		{"storageClassName a DNS subdomain", func(v *corev1.PersistentVolume) { v.Spec.StorageClassName = "Slow!" },
			[]string{errKey(invalid, "spec.storageClassName")}},
		{"source required", func(v *corev1.PersistentVolume) { v.Spec.HostPath = nil }, []string{errKey(required, "spec")}},
		{"one source", func(v *corev1.PersistentVolume) { v.Spec.Local = &corev1.LocalVolumeSource{Path: "/mnt"} },
			[]string{errKey(forbidden, "spec.local")}},
		{"hostPath path required", func(v *corev1.PersistentVolume) { v.Spec.HostPath.Path = "" },
			[]string{errKey(required, "spec.hostPath.path")}},
		{"hostPath path absolute", func(v *corev1.PersistentVolume) { v.Spec.HostPath.Path = "data" },
			[]string{errKey(invalid, "spec.hostPath.path")}},
		{"hostPath path without ..", func(v *corev1.PersistentVolume) { v.Spec.HostPath.Path = "/data/../etc" },
			[]string{errKey(invalid, "spec.hostPath.path")}},
		{"hostPath type known", func(v *corev1.PersistentVolume) { v.Spec.HostPath.Type = ptrTo(corev1.HostPathType("Pipe")) },
			[]string{errKey(notSupported, "spec.hostPath.type")}},
		{"local needs node affinity", func(v *corev1.PersistentVolume) {
			localSource(v)
			v.Spec.NodeAffinity = nil
		}, []string{errKey(required, "spec.nodeAffinity")}},
		{"csi", csiSource, nil},
		{"csi driver required", func(v *corev1.PersistentVolume) {
			csiSource(v)
			v.Spec.CSI.Driver = ""
		}, []string{errKey(required, "spec.csi.driver")}},
		{"csi driver a DNS subdomain", func(v *corev1.PersistentVolume) {
			csiSource(v)
			v.Spec.CSI.Driver = "disk_driver"
		}, []string{errKey(invalid, "spec.csi.driver")}},
		{"csi volumeHandle required", func(v *corev1.PersistentVolume) {
			csiSource(v)
			v.Spec.CSI.VolumeHandle = ""
		}, []string{errKey(required, "spec.csi.volumeHandle")}},
		{"claimRef names a claim", func(v *corev1.PersistentVolume) { v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default"} },
			[]string{errKey(required, "spec.claimRef.name")}},
	})
}

func TestPVUpdate(t *testing.T) {
	runUpdate(t, pvResource, false, validPV, []validationCase[*corev1.PersistentVolume]{
		{"capacity", func(v *corev1.PersistentVolume) { v.Spec.Capacity = storage("20Gi") }, nil},
		{"reclaim policy", func(v *corev1.PersistentVolume) {
			v.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
		}, nil},
		{"source immutable", func(v *corev1.PersistentVolume) { v.Spec.HostPath.Path = "/elsewhere" },
			[]string{errKey(forbidden, "spec.persistentvolumesource")}},
		{"volumeMode immutable", func(v *corev1.PersistentVolume) { v.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeBlock) },
			[]string{errKey(invalid, "spec.volumeMode")}},
	})
}

func TestPVStatusUpdate(t *testing.T) {
	runUpdate(t, pvResource, true, validPV, []validationCase[*corev1.PersistentVolume]{
		{"available", func(v *corev1.PersistentVolume) { v.Status.Phase = corev1.VolumeAvailable }, nil},
		{"phase known", func(v *corev1.PersistentVolume) { v.Status.Phase = "Lost" }, []string{errKey(notSupported, "status.phase")}},
	})
}

func TestPVRow(t *testing.T) {
	v := validPV()
	v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data-web-0"}
	v.Status.Phase = corev1.VolumeBound
	got := pvRow(v, testNow)
	want := []interface{}{"pv-1", "10Gi", "RWO", "Retain", "Bound", "default/data-web-0", "", "<unset>", "", "60m", "Filesystem"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestVolumeAndClaimFieldSets(t *testing.T) {
	want := fields.Set{"metadata.name": "pv-1", "metadata.namespace": "", "name": "pv-1"}
	if diff := cmp.Diff(want, pvResource.FieldSet(validPV())); diff != "" {
		t.Errorf("PV FieldSet (-want +got):\n%s", diff)
	}
	want = fields.Set{"metadata.name": "data-web-0", "metadata.namespace": "default", "name": "data-web-0"}
	if diff := cmp.Diff(want, pvcResource.FieldSet(validPVC())); diff != "" {
		t.Errorf("PVC FieldSet (-want +got):\n%s", diff)
	}
}
