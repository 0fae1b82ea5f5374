package registry

import (
	"strings"
	"time"

	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupResourceAPI is the API group of dynamic resource allocation:
// device classes, resource claims and their templates, the resource
// slices drivers publish and device taint rules. minik serves the API
// only: it allocates no claim and runs no driver, so a claim stays
// pending until something else writes its status.
const GroupResourceAPI = "resource.k8s.io"

var (
	deviceClassResource           = newDeviceClassResource()
	resourceClaimResource         = newResourceClaimResource()
	resourceClaimTemplateResource = newResourceClaimTemplateResource()
	resourceSliceResource         = newResourceSliceResource()
	deviceTaintRuleResource       = newDeviceTaintRuleResource()
)

func newDeviceClassResource() *Resource {
	r := plainResource(&Resource{
		Name: "deviceclasses", Singular: "deviceclass", Kind: "DeviceClass", Group: GroupResourceAPI,
		New:     func() runtime.Object { return &resourcev1.DeviceClass{} },
		NewList: func() runtime.Object { return &resourcev1.DeviceClassList{} },
		Columns: []metav1.TableColumnDefinition{nameColumn(), ageColumn()},
		Row: printable(func(c *resourcev1.DeviceClass, now time.Time) []interface{} {
			return []interface{}{c.Name, since(c.CreationTimestamp.Time, now)}
		}),
	}, validateDeviceClass, nil)
	r.PrepareForCreate = mutate(func(c *resourcev1.DeviceClass) { c.Generation = 1 })
	r.PrepareForUpdate = mutatePair(func(c, old *resourcev1.DeviceClass) {
		nextGeneration(&c.ObjectMeta, &old.ObjectMeta, c.Spec, old.Spec)
	})
	return r
}

func newResourceClaimResource() *Resource {
	r := &Resource{
		Name: "resourceclaims", Singular: "resourceclaim", Kind: "ResourceClaim", Group: GroupResourceAPI,
		Namespaced: true, HasStatus: true,
		New:     func() runtime.Object { return &resourcev1.ResourceClaim{} },
		NewList: func() runtime.Object { return &resourcev1.ResourceClaimList{} },

		PrepareForCreate: mutate(func(c *resourcev1.ResourceClaim) {
			c.Status = resourcev1.ResourceClaimStatus{}
			c.Generation = 1
			defaultClaimSpec(&c.Spec)
		}),
		PrepareForUpdate: mutatePair(func(c, old *resourcev1.ResourceClaim) {
			c.Status = old.Status
			defaultClaimSpec(&c.Spec)
			nextGeneration(&c.ObjectMeta, &old.ObjectMeta, c.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(c, old *resourcev1.ResourceClaim) {
			c.Spec = old.Spec
			c.Generation = old.Generation
		}),
		ValidateCreate: check(validateResourceClaim),
		ValidateUpdate: checkPair(func(c, old *resourcev1.ResourceClaim) field.ErrorList {
			errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateResourceClaim(c)...)
			return immutable(errs, specPath, c.Spec, old.Spec)
		}),
		ValidateStatusUpdate: checkPair(func(c, old *resourcev1.ResourceClaim) field.ErrorList {
			errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateClaimStatus(&c.Status, &old.Status)...)
		}),
		FieldSet: selectable(func(c *resourcev1.ResourceClaim) fields.Set { return metaFields(&c.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("State", "string", "The claim's state: pending, allocated, reserved or deleted.", false),
			ageColumn(),
		},
		Row: printable(func(c *resourcev1.ResourceClaim, now time.Time) []interface{} {
			return []interface{}{c.Name, claimState(c), since(c.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// claimState summarizes a claim for its table row, as kubectl shows it.
func claimState(c *resourcev1.ResourceClaim) string {
	var states []string
	if c.DeletionTimestamp != nil {
		states = append(states, "deleted")
	}
	if c.Status.Allocation == nil {
		if c.DeletionTimestamp == nil {
			states = append(states, "pending")
		}
	} else {
		states = append(states, "allocated")
		if len(c.Status.ReservedFor) > 0 {
			states = append(states, "reserved")
		}
	}
	return strings.Join(states, ",")
}

func newResourceClaimTemplateResource() *Resource {
	r := plainResource(&Resource{
		Name: "resourceclaimtemplates", Singular: "resourceclaimtemplate", Kind: "ResourceClaimTemplate",
		Group: GroupResourceAPI, Namespaced: true,
		New:     func() runtime.Object { return &resourcev1.ResourceClaimTemplate{} },
		NewList: func() runtime.Object { return &resourcev1.ResourceClaimTemplateList{} },
		Columns: []metav1.TableColumnDefinition{nameColumn(), ageColumn()},
		Row: printable(func(t *resourcev1.ResourceClaimTemplate, now time.Time) []interface{} {
			return []interface{}{t.Name, since(t.CreationTimestamp.Time, now)}
		}),
	}, validateResourceClaimTemplate, func(t, old *resourcev1.ResourceClaimTemplate) field.ErrorList {
		return immutable(nil, specPath, t.Spec, old.Spec)
	})
	r.PrepareForCreate = mutate(func(t *resourcev1.ResourceClaimTemplate) { defaultClaimSpec(&t.Spec.Spec) })
	r.PrepareForUpdate = mutatePair(func(t, old *resourcev1.ResourceClaimTemplate) {
		defaultClaimSpec(&t.Spec.Spec)
		t.Generation = old.Generation
	})
	return r
}

func newResourceSliceResource() *Resource {
	r := plainResource(&Resource{
		Name: "resourceslices", Singular: "resourceslice", Kind: "ResourceSlice", Group: GroupResourceAPI,
		New:     func() runtime.Object { return &resourcev1.ResourceSlice{} },
		NewList: func() runtime.Object { return &resourcev1.ResourceSliceList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Node", "string", resourcev1.ResourceSliceSpec{}.SwaggerDoc()["nodeName"], false),
			column("Driver", "string", resourcev1.ResourceSliceSpec{}.SwaggerDoc()["driver"], false),
			column("Pool", "string", resourcev1.ResourcePool{}.SwaggerDoc()["name"], false),
			ageColumn(),
		},
		Row: printable(func(s *resourcev1.ResourceSlice, now time.Time) []interface{} {
			return []interface{}{s.Name, orNone(ptrOr(s.Spec.NodeName, "")), s.Spec.Driver, s.Spec.Pool.Name,
				since(s.CreationTimestamp.Time, now)}
		}),
	}, validateResourceSlice, func(s, old *resourcev1.ResourceSlice) field.ErrorList {
		errs := immutable(nil, specPath.Child("driver"), s.Spec.Driver, old.Spec.Driver)
		return immutable(errs, specPath.Child("nodeName"), s.Spec.NodeName, old.Spec.NodeName)
	})
	r.PrepareForCreate = mutate(func(s *resourcev1.ResourceSlice) { s.Generation = 1 })
	r.PrepareForUpdate = mutatePair(func(s, old *resourcev1.ResourceSlice) {
		nextGeneration(&s.ObjectMeta, &old.ObjectMeta, s.Spec, old.Spec)
	})
	// Drivers and kubelets list the slices of one node or driver.
	r.FieldSet = selectable(func(s *resourcev1.ResourceSlice) fields.Set {
		return metaFields(&s.ObjectMeta, fields.Set{
			resourcev1.ResourceSliceSelectorNodeName: ptrOr(s.Spec.NodeName, ""),
			resourcev1.ResourceSliceSelectorDriver:   s.Spec.Driver,
			resourcev1.ResourceSliceSelectorPoolName: s.Spec.Pool.Name,
		})
	})
	return r
}

func newDeviceTaintRuleResource() *Resource {
	r := &Resource{
		Name: "devicetaintrules", Singular: "devicetaintrule", Kind: "DeviceTaintRule", Group: GroupResourceAPI,
		HasStatus: true,
		New:       func() runtime.Object { return &resourcev1.DeviceTaintRule{} },
		NewList:   func() runtime.Object { return &resourcev1.DeviceTaintRuleList{} },

		PrepareForCreate: mutate(func(d *resourcev1.DeviceTaintRule) {
			d.Status = resourcev1.DeviceTaintRuleStatus{}
			d.Generation = 1
			if d.Spec.Taint.TimeAdded == nil {
				now := metav1.NewTime(time.Now().Truncate(time.Second))
				d.Spec.Taint.TimeAdded = &now
			}
		}),
		PrepareForUpdate: mutatePair(func(d, old *resourcev1.DeviceTaintRule) {
			d.Status = old.Status
			if d.Spec.Taint.TimeAdded == nil {
				d.Spec.Taint.TimeAdded = old.Spec.Taint.TimeAdded
			}
			nextGeneration(&d.ObjectMeta, &old.ObjectMeta, d.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(d, old *resourcev1.DeviceTaintRule) {
			d.Spec = old.Spec
			d.Generation = old.Generation
		}),
		ValidateCreate: check(validateDeviceTaintRule),
		ValidateUpdate: checkPair(func(d, old *resourcev1.DeviceTaintRule) field.ErrorList {
			return append(validateMetaUpdate(&d.ObjectMeta, &old.ObjectMeta), validateDeviceTaintRule(d)...)
		}),
		ValidateStatusUpdate: checkPair(func(d, old *resourcev1.DeviceTaintRule) field.ErrorList {
			errs := validateMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
			return append(errs, validateDeviceTaintRuleStatus(&d.Status)...)
		}),
		FieldSet: selectable(func(d *resourcev1.DeviceTaintRule) fields.Set { return metaFields(&d.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Effect", "string", resourcev1.DeviceTaint{}.SwaggerDoc()["effect"], false),
			ageColumn(),
		},
		Row: printable(func(d *resourcev1.DeviceTaintRule, now time.Time) []interface{} {
			return []interface{}{d.Name, string(d.Spec.Taint.Effect), since(d.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// defaultClaimSpec applies Kubernetes' defaults to the requests of a
// claim: one device of the class (ExactCount, count 1) and tolerations
// that compare with Equal.
func defaultClaimSpec(s *resourcev1.ResourceClaimSpec) {
	defaultRequest := func(mode *resourcev1.DeviceAllocationMode, count *int64, tols []resourcev1.DeviceToleration) {
		if *mode == "" {
			*mode = resourcev1.DeviceAllocationModeExactCount
		}
		if *mode == resourcev1.DeviceAllocationModeExactCount && *count == 0 {
			*count = 1
		}
		for i := range tols {
			if tols[i].Operator == "" {
				tols[i].Operator = resourcev1.DeviceTolerationOpEqual
			}
		}
	}
	for i := range s.Devices.Requests {
		req := &s.Devices.Requests[i]
		if e := req.Exactly; e != nil {
			defaultRequest(&e.AllocationMode, &e.Count, e.Tolerations)
		}
		for j := range req.FirstAvailable {
			sub := &req.FirstAvailable[j]
			defaultRequest(&sub.AllocationMode, &sub.Count, sub.Tolerations)
		}
	}
}
