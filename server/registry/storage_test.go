package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateStorageClass(t *testing.T) {
	type sc = storagev1.StorageClass
	base := func() *sc {
		c := &sc{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "csi.example.com", Parameters: map[string]string{"type": "ssd"}}
		storageClassResource.PrepareForCreate(c)
		return c
	}
	if c := base(); *c.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || *c.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("defaults = %v %v, want Delete Immediate", *c.ReclaimPolicy, *c.VolumeBindingMode)
	}
	runValidation(t, storageClassResource, base, []validationCase[*sc]{
		{name: "valid"},
		{"no provisioner", func(c *sc) { c.Provisioner = "" }, []string{errKey(required, "provisioner")}},
		{"bad provisioner", func(c *sc) { c.Provisioner = "not a name" }, []string{errKey(invalid, "provisioner")}},
		{"bad reclaim policy", func(c *sc) { c.ReclaimPolicy = ptrTo(corev1.PersistentVolumeReclaimPolicy("Keep")) },
			[]string{errKey(notSupported, "reclaimPolicy")}},
		{"bad binding mode", func(c *sc) { c.VolumeBindingMode = ptrTo(storagev1.VolumeBindingMode("Later")) },
			[]string{errKey(notSupported, "volumeBindingMode")}},
	})
	runUpdate(t, storageClassResource, false, base, []validationCase[*sc]{
		{"parameters", func(c *sc) { c.Parameters = map[string]string{"type": "hdd"} }, []string{errKey(invalid, "parameters")}},
		{"provisioner", func(c *sc) { c.Provisioner = "other.example.com" }, []string{errKey(invalid, "provisioner")}},
		{"allowVolumeExpansion may change", func(c *sc) { c.AllowVolumeExpansion = ptrTo(true) }, nil},
	})
}

func TestValidateCSIDriver(t *testing.T) {
	type d = storagev1.CSIDriver
	base := func() *d {
		c := &d{ObjectMeta: metav1.ObjectMeta{Name: "csi.example.com"}}
		csiDriverResource.PrepareForCreate(c)
		return c
	}
	if c := base(); !*c.Spec.AttachRequired || len(c.Spec.VolumeLifecycleModes) != 1 || *c.Spec.FSGroupPolicy != storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy {
		t.Errorf("defaults = %+v", c.Spec)
	}
	runValidation(t, csiDriverResource, base, []validationCase[*d]{
		{name: "valid"},
		{"long name", func(c *d) { c.Name = "a123456789012345678901234567890123456789012345678901234567890123.com" },
			[]string{errKey(tooLong, "metadata.name")}},
		{"bad mode", func(c *d) { c.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{"Sometimes"} },
			[]string{errKey(notSupported, "spec.volumeLifecycleModes[0]")}},
		{"short token", func(c *d) {
			c.Spec.TokenRequests = []storagev1.TokenRequest{{Audience: "a", ExpirationSeconds: ptrTo[int64](60)}}
		},
			[]string{errKey(invalid, "spec.tokenRequests[0].expirationSeconds")}},
	})
	runUpdate(t, csiDriverResource, false, base, []validationCase[*d]{
		{"attachRequired", func(c *d) { c.Spec.AttachRequired = ptrTo(false) }, []string{errKey(invalid, "spec.attachRequired")}},
		{"podInfoOnMount may change", func(c *d) { c.Spec.PodInfoOnMount = ptrTo(true) }, nil},
	})
}

func TestValidateCSINodeAndCapacity(t *testing.T) {
	type n = storagev1.CSINode
	runValidation(t, csiNodeResource, func() *n {
		return &n{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
			{Name: "csi.example.com", NodeID: "node-1", TopologyKeys: []string{"topology.example.com/zone"}}}}}
	}, []validationCase[*n]{
		{name: "valid"},
		{"no node id", func(c *n) { c.Spec.Drivers[0].NodeID = "" }, []string{errKey(required, "spec.drivers[0].nodeID")}},
		{"duplicate driver", func(c *n) { c.Spec.Drivers = append(c.Spec.Drivers, c.Spec.Drivers[0]) },
			[]string{errKey(duplicate, "spec.drivers[1].name")}},
	})
	type c = storagev1.CSIStorageCapacity
	runValidation(t, csiStorageCapacityResource, func() *c {
		q := resource.MustParse("1Gi")
		return &c{ObjectMeta: metav1.ObjectMeta{Name: "cap", Namespace: "default"}, StorageClassName: "fast", Capacity: &q}
	}, []validationCase[*c]{
		{name: "valid"},
		{"no class", func(c *c) { c.StorageClassName = "" }, []string{errKey(required, "storageClassName")}},
		{"negative", func(c *c) { q := resource.MustParse("-1"); c.Capacity = &q }, []string{errKey(invalid, "capacity")}},
	})
}

func TestValidateVolumeAttachment(t *testing.T) {
	type a = storagev1.VolumeAttachment
	base := func() *a {
		return &a{ObjectMeta: metav1.ObjectMeta{Name: "va"}, Spec: storagev1.VolumeAttachmentSpec{
			Attacher: "csi.example.com", NodeName: "node-1", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptrTo("pv-1")}}}
	}
	runValidation(t, volumeAttachmentResource, base, []validationCase[*a]{
		{name: "valid"},
		{"no source", func(c *a) { c.Spec.Source.PersistentVolumeName = nil }, []string{errKey(required, "spec.source")}},
		{"no node", func(c *a) { c.Spec.NodeName = "" }, []string{errKey(required, "spec.nodeName")}},
		{"metadata without attached", func(c *a) { c.Status.AttachmentMetadata = map[string]string{"k": "v"} },
			[]string{errKey(forbidden, "status.attachmentMetadata")}},
	})
	runUpdate(t, volumeAttachmentResource, false, base, []validationCase[*a]{
		{"spec is immutable", func(c *a) { c.Spec.NodeName = "node-2" }, []string{errKey(invalid, "spec")}},
	})
	runUpdate(t, volumeAttachmentResource, true, base, []validationCase[*a]{
		{"status may change", func(c *a) { c.Status.Attached = true }, nil},
	})
}

func TestValidateVolumeAttributesClass(t *testing.T) {
	type v = storagev1.VolumeAttributesClass
	base := func() *v {
		return &v{ObjectMeta: metav1.ObjectMeta{Name: "gold"}, DriverName: "csi.example.com", Parameters: map[string]string{"iops": "100"}}
	}
	runValidation(t, volumeAttributesClassResource, base, []validationCase[*v]{
		{name: "valid"},
		{"no driver", func(c *v) { c.DriverName = "" }, []string{errKey(required, "driverName")}},
	})
	runUpdate(t, volumeAttributesClassResource, false, base, []validationCase[*v]{
		{"parameters", func(c *v) { c.Parameters["iops"] = "200" }, []string{errKey(invalid, "parameters")}},
	})
}
