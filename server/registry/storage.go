package registry

import (
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupStorage is the API group of the storage kinds: classes, CSI drivers
// and nodes, storage capacities and volume attachments. minik provisions
// and attaches no volumes itself; it keeps these objects for the drivers
// and tools that do, with Kubernetes' validation.
const GroupStorage = "storage.k8s.io"

var (
	storageClassResource          = newStorageClassResource()
	csiDriverResource             = newCSIDriverResource()
	csiNodeResource               = newCSINodeResource()
	csiStorageCapacityResource    = newCSIStorageCapacityResource()
	volumeAttachmentResource      = newVolumeAttachmentResource()
	volumeAttributesClassResource = newVolumeAttributesClassResource()
)

// plainResource fills what kinds without a status share: updates keep the
// generation, a status write changes nothing, and only the metadata
// fields are selectable.
func plainResource[T interface {
	runtime.Object
	metav1.Object
}](r *Resource, validate func(T) field.ErrorList, validateUpdate func(obj, old T) field.ErrorList) *Resource {
	r.PrepareForCreate = mutate(func(T) {})
	r.PrepareForUpdate = mutatePair(func(obj, old T) { obj.SetGeneration(old.GetGeneration()) })
	r.PrepareForStatusUpdate = func(obj, old runtime.Object) {
		// Nothing but metadata changes through status.
		meta := *objectMeta(obj.(metav1.Object))
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(old.DeepCopyObject()).Elem())
		*objectMeta(obj.(metav1.Object)) = meta
	}
	r.ValidateCreate = check(validate)
	r.ValidateUpdate = checkPair(func(obj, old T) field.ErrorList {
		errs := validateMetaUpdate(objectMeta(obj), objectMeta(old))
		errs = append(errs, validate(obj)...)
		if validateUpdate != nil {
			errs = append(errs, validateUpdate(obj, old)...)
		}
		return errs
	})
	r.ValidateStatusUpdate = r.ValidateUpdate
	r.FieldSet = selectable(func(obj T) fields.Set { return metaFields(objectMeta(obj), nil) })
	notScalable(r)
	return r
}

// objectMeta returns the ObjectMeta of a built-in object.
func objectMeta(obj metav1.Object) *metav1.ObjectMeta {
	type metaHolder interface{ GetObjectMeta() metav1.Object }
	if h, ok := obj.(metaHolder); ok {
		if m, ok := h.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return m
		}
	}
	panic("registry: object without ObjectMeta")
}

func immutable(errs field.ErrorList, path *field.Path, v, old any) field.ErrorList {
	if !apiequality.Semantic.DeepEqual(v, old) {
		errs = append(errs, field.Invalid(path, v, apivalidation.FieldImmutableErrorMsg))
	}
	return errs
}

// validateCSIDriverName checks a CSI driver name as Kubernetes does: at
// most 63 characters, a DNS subdomain made lower case.
func validateCSIDriverName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	var errs field.ErrorList
	if len(name) > 63 {
		errs = append(errs, field.TooLong(path, name, 63))
	}
	for _, msg := range validation.IsDNS1123Subdomain(strings.ToLower(name)) {
		errs = append(errs, field.Invalid(path, name, msg))
	}
	return errs
}

func newStorageClassResource() *Resource {
	r := plainResource(&Resource{
		Name: "storageclasses", Singular: "storageclass", Kind: "StorageClass", Group: GroupStorage,
		ShortNames: []string{"sc"},
		New:        func() runtime.Object { return &storagev1.StorageClass{} },
		NewList:    func() runtime.Object { return &storagev1.StorageClassList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Provisioner", "string", storagev1.StorageClass{}.SwaggerDoc()["provisioner"], false),
			column("ReclaimPolicy", "string", storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"], false),
			column("VolumeBindingMode", "string", storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"], false),
			column("AllowVolumeExpansion", "string", storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"], false),
			ageColumn(),
		},
		Row: printable(func(c *storagev1.StorageClass, now time.Time) []interface{} {
			expand := false
			if c.AllowVolumeExpansion != nil {
				expand = *c.AllowVolumeExpansion
			}
			return []interface{}{c.Name, c.Provisioner, string(ptrOr(c.ReclaimPolicy, "")), string(ptrOr(c.VolumeBindingMode, "")),
				expand, since(c.CreationTimestamp.Time, now)}
		}),
	}, validateStorageClass, func(c, old *storagev1.StorageClass) field.ErrorList {
		var errs field.ErrorList
		errs = immutable(errs, field.NewPath("parameters"), c.Parameters, old.Parameters)
		errs = immutable(errs, field.NewPath("provisioner"), c.Provisioner, old.Provisioner)
		errs = immutable(errs, field.NewPath("reclaimPolicy"), c.ReclaimPolicy, old.ReclaimPolicy)
		errs = immutable(errs, field.NewPath("volumeBindingMode"), c.VolumeBindingMode, old.VolumeBindingMode)
		return errs
	})
	defaults := func(c *storagev1.StorageClass) {
		if c.ReclaimPolicy == nil {
			c.ReclaimPolicy = ptrTo(corev1.PersistentVolumeReclaimDelete)
		}
		if c.VolumeBindingMode == nil {
			c.VolumeBindingMode = ptrTo(storagev1.VolumeBindingImmediate)
		}
	}
	r.PrepareForCreate = mutate(defaults)
	r.PrepareForUpdate = mutatePair(func(c, old *storagev1.StorageClass) {
		defaults(c)
		c.Generation = old.Generation
	})
	return r
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func validateStorageClass(c *storagev1.StorageClass) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	errs = append(errs, validateCSIDriverName(c.Provisioner, field.NewPath("provisioner"))...)
	size := 0
	for k, v := range c.Parameters {
		if k == "" {
			errs = append(errs, field.Invalid(field.NewPath("parameters"), k, "key must not be empty"))
		}
		size += len(k) + len(v)
	}
	if size > 256*1024 {
		errs = append(errs, field.TooLong(field.NewPath("parameters"), "", 256*1024))
	}
	if c.ReclaimPolicy != nil {
		errs = append(errs, validateEnum(*c.ReclaimPolicy, field.NewPath("reclaimPolicy"),
			corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain)...)
	}
	if c.VolumeBindingMode != nil {
		errs = append(errs, validateEnum(*c.VolumeBindingMode, field.NewPath("volumeBindingMode"),
			storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer)...)
	}
	return errs
}

func newCSIDriverResource() *Resource {
	r := plainResource(&Resource{
		Name: "csidrivers", Singular: "csidriver", Kind: "CSIDriver", Group: GroupStorage,
		New:     func() runtime.Object { return &storagev1.CSIDriver{} },
		NewList: func() runtime.Object { return &storagev1.CSIDriverList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("AttachRequired", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["attachRequired"], false),
			column("PodInfoOnMount", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["podInfoOnMount"], false),
			column("Modes", "string", storagev1.CSIDriverSpec{}.SwaggerDoc()["volumeLifecycleModes"], false),
			ageColumn(),
		},
		Row: printable(func(d *storagev1.CSIDriver, now time.Time) []interface{} {
			var modes []string
			for _, m := range d.Spec.VolumeLifecycleModes {
				modes = append(modes, string(m))
			}
			return []interface{}{d.Name, ptrOr(d.Spec.AttachRequired, true), ptrOr(d.Spec.PodInfoOnMount, false),
				orNone(strings.Join(modes, ",")), since(d.CreationTimestamp.Time, now)}
		}),
	}, validateCSIDriver, func(d, old *storagev1.CSIDriver) field.ErrorList {
		var errs field.ErrorList
		p := field.NewPath("spec")
		errs = immutable(errs, p.Child("attachRequired"), d.Spec.AttachRequired, old.Spec.AttachRequired)
		errs = immutable(errs, p.Child("volumeLifecycleModes"), d.Spec.VolumeLifecycleModes, old.Spec.VolumeLifecycleModes)
		return errs
	})
	defaults := func(d *storagev1.CSIDriver) {
		s := &d.Spec
		if s.AttachRequired == nil {
			s.AttachRequired = ptrTo(true)
		}
		if s.PodInfoOnMount == nil {
			s.PodInfoOnMount = ptrTo(false)
		}
		if s.StorageCapacity == nil {
			s.StorageCapacity = ptrTo(false)
		}
		if s.FSGroupPolicy == nil {
			s.FSGroupPolicy = ptrTo(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
		}
		if len(s.VolumeLifecycleModes) == 0 {
			s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
		}
		if s.RequiresRepublish == nil {
			s.RequiresRepublish = ptrTo(false)
		}
		if s.SELinuxMount == nil {
			s.SELinuxMount = ptrTo(false)
		}
	}
	r.PrepareForCreate = mutate(defaults)
	r.PrepareForUpdate = mutatePair(func(d, old *storagev1.CSIDriver) {
		defaults(d)
		d.Generation = old.Generation
	})
	return r
}

func validateCSIDriver(d *storagev1.CSIDriver) field.ErrorList {
	// The name is a driver name, checked as such rather than as a
	// DNS subdomain.
	errs := validateMeta(&d.ObjectMeta, false, func(string, bool) []string { return nil })
	errs = append(errs, validateCSIDriverName(d.Name, field.NewPath("metadata", "name"))...)
	p := field.NewPath("spec")
	if d.Spec.FSGroupPolicy != nil {
		errs = append(errs, validateEnum(*d.Spec.FSGroupPolicy, p.Child("fsGroupPolicy"),
			storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy, storagev1.FileFSGroupPolicy, storagev1.NoneFSGroupPolicy)...)
	}
	for i, m := range d.Spec.VolumeLifecycleModes {
		errs = append(errs, validateEnum(m, p.Child("volumeLifecycleModes").Index(i),
			storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral)...)
	}
	seen := map[string]bool{}
	for i, tr := range d.Spec.TokenRequests {
		tp := p.Child("tokenRequests").Index(i)
		if seen[tr.Audience] {
			errs = append(errs, field.Duplicate(tp.Child("audience"), tr.Audience))
		}
		seen[tr.Audience] = true
		if tr.ExpirationSeconds != nil && (*tr.ExpirationSeconds < 600 || *tr.ExpirationSeconds > 1<<32) {
			errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *tr.ExpirationSeconds,
				"may not specify a duration less than 10 minutes or greater than 2^32 seconds"))
		}
	}
	return errs
}

func newCSINodeResource() *Resource {
	return plainResource(&Resource{
		Name: "csinodes", Singular: "csinode", Kind: "CSINode", Group: GroupStorage,
		New:     func() runtime.Object { return &storagev1.CSINode{} },
		NewList: func() runtime.Object { return &storagev1.CSINodeList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Drivers", "integer", storagev1.CSINodeSpec{}.SwaggerDoc()["drivers"], false),
			ageColumn(),
		},
		Row: printable(func(n *storagev1.CSINode, now time.Time) []interface{} {
			return []interface{}{n.Name, int64(len(n.Spec.Drivers)), since(n.CreationTimestamp.Time, now)}
		}),
	}, validateCSINode, nil)
}

func validateCSINode(n *storagev1.CSINode) field.ErrorList {
	errs := validateMeta(&n.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	p := field.NewPath("spec", "drivers")
	seen := map[string]bool{}
	for i, d := range n.Spec.Drivers {
		dp := p.Index(i)
		errs = append(errs, validateCSIDriverName(d.Name, dp.Child("name"))...)
		if seen[d.Name] {
			errs = append(errs, field.Duplicate(dp.Child("name"), d.Name))
		}
		seen[d.Name] = true
		if d.NodeID == "" {
			errs = append(errs, field.Required(dp.Child("nodeID"), ""))
		} else if len(d.NodeID) > 256 {
			errs = append(errs, field.TooLong(dp.Child("nodeID"), d.NodeID, 256))
		}
		for j, k := range d.TopologyKeys {
			if k == "" {
				errs = append(errs, field.Required(dp.Child("topologyKeys").Index(j), ""))
			} else {
				errs = append(errs, messages(dp.Child("topologyKeys").Index(j), k, validation.IsQualifiedName(k))...)
			}
		}
		if a := d.Allocatable; a != nil && a.Count != nil && *a.Count < 0 {
			errs = append(errs, field.Invalid(dp.Child("allocatable", "count"), *a.Count, apivalidation.IsNegativeErrorMsg))
		}
	}
	return errs
}

func newCSIStorageCapacityResource() *Resource {
	return plainResource(&Resource{
		Name: "csistoragecapacities", Singular: "csistoragecapacity", Kind: "CSIStorageCapacity", Group: GroupStorage,
		Namespaced: true,
		New:        func() runtime.Object { return &storagev1.CSIStorageCapacity{} },
		NewList:    func() runtime.Object { return &storagev1.CSIStorageCapacityList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("StorageClassName", "string", storagev1.CSIStorageCapacity{}.SwaggerDoc()["storageClassName"], false),
			column("Capacity", "string", storagev1.CSIStorageCapacity{}.SwaggerDoc()["capacity"], false),
		},
		Row: printable(func(c *storagev1.CSIStorageCapacity, now time.Time) []interface{} {
			capacity := unknown
			if c.Capacity != nil {
				capacity = c.Capacity.String()
			}
			return []interface{}{c.Name, c.StorageClassName, capacity}
		}),
	}, validateCSIStorageCapacity, func(c, old *storagev1.CSIStorageCapacity) field.ErrorList {
		var errs field.ErrorList
		errs = immutable(errs, field.NewPath("storageClassName"), c.StorageClassName, old.StorageClassName)
		errs = immutable(errs, field.NewPath("nodeTopology"), c.NodeTopology, old.NodeTopology)
		return errs
	})
}

func validateCSIStorageCapacity(c *storagev1.CSIStorageCapacity) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	if c.StorageClassName == "" {
		errs = append(errs, field.Required(field.NewPath("storageClassName"), ""))
	} else {
		errs = append(errs, validateDNSSubdomain(c.StorageClassName, field.NewPath("storageClassName"))...)
	}
	if c.NodeTopology != nil {
		errs = append(errs, v1validation.ValidateLabelSelector(c.NodeTopology, v1validation.LabelSelectorValidationOptions{}, field.NewPath("nodeTopology"))...)
	}
	for name, q := range map[string]*resource.Quantity{"capacity": c.Capacity, "maximumVolumeSize": c.MaximumVolumeSize} {
		if q != nil && q.Sign() < 0 {
			errs = append(errs, field.Invalid(field.NewPath(name), q.String(), apivalidation.IsNegativeErrorMsg))
		}
	}
	return errs
}

func newVolumeAttachmentResource() *Resource {
	r := &Resource{
		Name: "volumeattachments", Singular: "volumeattachment", Kind: "VolumeAttachment", Group: GroupStorage,
		HasStatus: true,
		New:       func() runtime.Object { return &storagev1.VolumeAttachment{} },
		NewList:   func() runtime.Object { return &storagev1.VolumeAttachmentList{} },

		PrepareForCreate: mutate(func(a *storagev1.VolumeAttachment) { a.Status = storagev1.VolumeAttachmentStatus{} }),
		PrepareForUpdate: mutatePair(func(a, old *storagev1.VolumeAttachment) {
			a.Status = old.Status
			nextGeneration(&a.ObjectMeta, &old.ObjectMeta, a.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(a, old *storagev1.VolumeAttachment) {
			a.Spec = old.Spec
			a.Generation = old.Generation
		}),
		ValidateCreate: check(validateVolumeAttachment),
		ValidateUpdate: checkPair(func(a, old *storagev1.VolumeAttachment) field.ErrorList {
			errs := validateMetaUpdate(&a.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateVolumeAttachment(a)...)
			return immutable(errs, field.NewPath("spec"), a.Spec, old.Spec)
		}),
		ValidateStatusUpdate: checkPair(func(a, old *storagev1.VolumeAttachment) field.ErrorList {
			errs := validateMetaUpdate(&a.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateVolumeAttachment(a)...)
		}),
		FieldSet: selectable(func(a *storagev1.VolumeAttachment) fields.Set { return metaFields(&a.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Attacher", "string", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"], false),
			column("PV", "string", storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"], false),
			column("Node", "string", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"], false),
			column("Attached", "boolean", storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"], false),
			ageColumn(),
		},
		Row: printable(func(a *storagev1.VolumeAttachment, now time.Time) []interface{} {
			return []interface{}{a.Name, a.Spec.Attacher, ptrOr(a.Spec.Source.PersistentVolumeName, ""), a.Spec.NodeName,
				a.Status.Attached, since(a.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

func validateVolumeAttachment(a *storagev1.VolumeAttachment) field.ErrorList {
	errs := validateMeta(&a.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	p := field.NewPath("spec")
	errs = append(errs, validateCSIDriverName(a.Spec.Attacher, p.Child("attacher"))...)
	if a.Spec.NodeName == "" {
		errs = append(errs, field.Required(p.Child("nodeName"), ""))
	} else {
		errs = append(errs, validateDNSSubdomain(a.Spec.NodeName, p.Child("nodeName"))...)
	}
	src := a.Spec.Source
	switch pv, inline := src.PersistentVolumeName != nil, src.InlineVolumeSpec != nil; {
	case pv && inline:
		errs = append(errs, field.Forbidden(p.Child("source"), "must specify exactly one of persistentVolumeName and inlineVolumeSpec"))
	case !pv && !inline:
		errs = append(errs, field.Required(p.Child("source"), "must specify exactly one of persistentVolumeName and inlineVolumeSpec"))
	case pv && *src.PersistentVolumeName == "":
		errs = append(errs, field.Required(p.Child("source", "persistentVolumeName"), "must specify non empty persistentVolumeName"))
	}
	sp := field.NewPath("status")
	if len(a.Status.AttachmentMetadata) > 0 && !a.Status.Attached {
		errs = append(errs, field.Forbidden(sp.Child("attachmentMetadata"), "may only be set when attached is true"))
	}
	for _, e := range []struct {
		err  *storagev1.VolumeError
		path string
	}{{a.Status.AttachError, "attachError"}, {a.Status.DetachError, "detachError"}} {
		if e.err != nil && len(e.err.Message) > 1024 {
			errs = append(errs, field.TooLong(sp.Child(e.path, "message"), "", 1024))
		}
	}
	return errs
}

func newVolumeAttributesClassResource() *Resource {
	return plainResource(&Resource{
		Name: "volumeattributesclasses", Singular: "volumeattributesclass", Kind: "VolumeAttributesClass", Group: GroupStorage,
		ShortNames: []string{"vac"},
		New:        func() runtime.Object { return &storagev1.VolumeAttributesClass{} },
		NewList:    func() runtime.Object { return &storagev1.VolumeAttributesClassList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("DriverName", "string", storagev1.VolumeAttributesClass{}.SwaggerDoc()["driverName"], false),
			ageColumn(),
		},
		Row: printable(func(c *storagev1.VolumeAttributesClass, now time.Time) []interface{} {
			return []interface{}{c.Name, c.DriverName, since(c.CreationTimestamp.Time, now)}
		}),
	}, validateVolumeAttributesClass, func(c, old *storagev1.VolumeAttributesClass) field.ErrorList {
		var errs field.ErrorList
		errs = immutable(errs, field.NewPath("driverName"), c.DriverName, old.DriverName)
		return immutable(errs, field.NewPath("parameters"), c.Parameters, old.Parameters)
	})
}

func validateVolumeAttributesClass(c *storagev1.VolumeAttributesClass) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	errs = append(errs, validateCSIDriverName(c.DriverName, field.NewPath("driverName"))...)
	if len(c.Parameters) > 512 {
		errs = append(errs, field.TooMany(field.NewPath("parameters"), len(c.Parameters), 512))
	}
	for k := range c.Parameters {
		if k == "" {
			errs = append(errs, field.Invalid(field.NewPath("parameters"), k, "key must not be empty"))
		}
	}
	return errs
}
