package registry

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestValidateDeviceClass(t *testing.T) {
	type dc = resourcev1.DeviceClass
	base := func() *dc {
		return &dc{ObjectMeta: metav1.ObjectMeta{Name: "gpu.example.com"}, Spec: resourcev1.DeviceClassSpec{
			Selectors: []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: "device.driver == 'gpu.example.com'"}}},
			Config: []resourcev1.DeviceClassConfiguration{{DeviceConfiguration: resourcev1.DeviceConfiguration{
				Opaque: &resourcev1.OpaqueDeviceConfiguration{Driver: "gpu.example.com", Parameters: runtime.RawExtension{Raw: []byte(`{"a":1}`)}},
			}}},
		}}
	}
	runValidation(t, deviceClassResource, base, []validationCase[*dc]{
		{name: "valid"},
		{"no cel", func(c *dc) { c.Spec.Selectors[0].CEL = nil }, []string{errKey(required, "spec.selectors[0].cel")}},
		{"empty expression", func(c *dc) { c.Spec.Selectors[0].CEL.Expression = "" },
			[]string{errKey(required, "spec.selectors[0].cel.expression")}},
		{"expression does not compile", func(c *dc) { c.Spec.Selectors[0].CEL.Expression = "device.driver ==" },
			[]string{errKey(invalid, "spec.selectors[0].cel.expression")}},
		{"expression not a bool", func(c *dc) { c.Spec.Selectors[0].CEL.Expression = "1 + 1" },
			[]string{errKey(invalid, "spec.selectors[0].cel.expression")}},
		{"no opaque", func(c *dc) { c.Spec.Config[0].Opaque = nil }, []string{errKey(required, "spec.config[0].opaque")}},
		{"bad driver", func(c *dc) { c.Spec.Config[0].Opaque.Driver = "GPU_driver" },
			[]string{errKey(invalid, "spec.config[0].opaque.driver")}},
		{"parameters not an object", func(c *dc) { c.Spec.Config[0].Opaque.Parameters.Raw = []byte(`[1]`) },
			[]string{errKey(invalid, "spec.config[0].opaque.parameters")}},
		{"no parameters", func(c *dc) { c.Spec.Config[0].Opaque.Parameters.Raw = nil },
			[]string{errKey(required, "spec.config[0].opaque.parameters")}},
	})
}

func TestValidateResourceClaim(t *testing.T) {
	type rc = resourcev1.ResourceClaim
	base := func() *rc {
		c := &rc{ObjectMeta: metav1.ObjectMeta{Name: "gpu", Namespace: "default"}, Spec: resourcev1.ResourceClaimSpec{
			Devices: resourcev1.DeviceClaim{
				Requests: []resourcev1.DeviceRequest{
					{Name: "req-0", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "dra.example.com"}},
					{Name: "req-1", FirstAvailable: []resourcev1.DeviceSubRequest{{Name: "big", DeviceClassName: "big.example.com"}}},
				},
				Constraints: []resourcev1.DeviceConstraint{{Requests: []string{"req-0", "req-1/big"},
					MatchAttribute: ptrTo(resourcev1.FullyQualifiedName("dra.example.com/numa"))}},
			},
		}}
		resourceClaimResource.PrepareForCreate(c)
		return c
	}
	req0 := func(c *rc) *resourcev1.ExactDeviceRequest { return c.Spec.Devices.Requests[0].Exactly }
	runValidation(t, resourceClaimResource, base, []validationCase[*rc]{
		{name: "valid"},
		{"no request name", func(c *rc) { c.Spec.Devices.Requests[0].Name = "" },
			[]string{errKey(required, "spec.devices.requests[0].name"), errKey(invalid, "spec.devices.constraints[0].requests[0]")}},
		{"duplicate request", func(c *rc) { c.Spec.Devices.Requests[1].Name = "req-0" },
			[]string{errKey(duplicate, "spec.devices.requests[1].name"), errKey(invalid, "spec.devices.constraints[0].requests[1]")}},
		{"neither exactly nor firstAvailable", func(c *rc) { c.Spec.Devices.Requests[0].Exactly = nil },
			[]string{errKey(required, "spec.devices.requests[0]")}},
		{"both exactly and firstAvailable", func(c *rc) {
			c.Spec.Devices.Requests[1].Exactly = &resourcev1.ExactDeviceRequest{DeviceClassName: "x"}
		}, []string{errKey(invalid, "spec.devices.requests[1]")}},
		{"no class", func(c *rc) { req0(c).DeviceClassName = "" },
			[]string{errKey(required, "spec.devices.requests[0].exactly.deviceClassName")}},
		{"zero count", func(c *rc) { req0(c).Count = 0 }, []string{errKey(invalid, "spec.devices.requests[0].exactly.count")}},
		{"count with All", func(c *rc) { req0(c).AllocationMode = resourcev1.DeviceAllocationModeAll },
			[]string{errKey(invalid, "spec.devices.requests[0].exactly.count")}},
		{"unknown mode", func(c *rc) { req0(c).AllocationMode = "Some" },
			[]string{errKey(notSupported, "spec.devices.requests[0].exactly.allocationMode")}},
		{"toleration Exists with value", func(c *rc) {
			req0(c).Tolerations = []resourcev1.DeviceToleration{{Key: "k", Operator: resourcev1.DeviceTolerationOpExists, Value: "v"}}
		}, []string{errKey(invalid, "spec.devices.requests[0].exactly.tolerations[0].value")}},
		{"constraint names no request", func(c *rc) { c.Spec.Devices.Constraints[0].Requests = []string{"req-9"} },
			[]string{errKey(invalid, "spec.devices.constraints[0].requests[0]")}},
		{"constraint without attribute", func(c *rc) { c.Spec.Devices.Constraints[0].MatchAttribute = nil },
			[]string{errKey(required, "spec.devices.constraints[0]")}},
		{"bad subrequest name", func(c *rc) { c.Spec.Devices.Requests[1].FirstAvailable[0].Name = "Big!" },
			[]string{errKey(invalid, "spec.devices.requests[1].firstAvailable[0].name"), errKey(invalid, "spec.devices.constraints[0].requests[1]")}},
	})
	runUpdate(t, resourceClaimResource, false, base, []validationCase[*rc]{
		{"labels change", func(c *rc) { c.Labels = map[string]string{"a": "b"} }, nil},
		{"spec is immutable", func(c *rc) { req0(c).DeviceClassName = "other.example.com" }, []string{errKey(invalid, "spec")}},
	})
	allocated := func() *rc {
		c := base()
		c.Status.Allocation = &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{
			Results: []resourcev1.DeviceRequestAllocationResult{{Request: "req-0", Driver: "dra.example.com", Pool: "node-1", Device: "gpu-0"}},
		}}
		return c
	}
	runUpdate(t, resourceClaimResource, true, base, []validationCase[*rc]{
		{"empty allocation", func(c *rc) { c.Status.Allocation = &resourcev1.AllocationResult{} }, nil},
		{"result without device", func(c *rc) {
			c.Status.Allocation = &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{
				Results: []resourcev1.DeviceRequestAllocationResult{{Request: "req-0", Driver: "dra.example.com", Pool: "a/b"}},
			}}
		}, []string{errKey(required, "status.allocation.devices.results[0].device")}},
		{"reserved without allocation", func(c *rc) {
			c.Status.ReservedFor = []resourcev1.ResourceClaimConsumerReference{{Resource: "pods", Name: "p", UID: "u1"}}
		}, []string{errKey(forbidden, "status.reservedFor")}},
		{"spec writes are ignored", func(c *rc) { req0(c).DeviceClassName = "other.example.com" }, nil},
	})
	runUpdate(t, resourceClaimResource, true, allocated, []validationCase[*rc]{
		{"reserve", func(c *rc) {
			c.Status.ReservedFor = []resourcev1.ResourceClaimConsumerReference{{Resource: "pods", Name: "p", UID: "u1"}}
		}, nil},
		{"duplicate consumer", func(c *rc) {
			ref := resourcev1.ResourceClaimConsumerReference{Resource: "pods", Name: "p", UID: "u1"}
			c.Status.ReservedFor = []resourcev1.ResourceClaimConsumerReference{ref, ref}
		}, []string{errKey(duplicate, "status.reservedFor[1].uid")}},
		{"allocation is immutable", func(c *rc) { c.Status.Allocation.Devices.Results[0].Device = "gpu-1" },
			[]string{errKey(invalid, "status.allocation")}},
		{"deallocate", func(c *rc) { c.Status.Allocation = nil }, nil},
	})
}

func TestResourceClaimDefaults(t *testing.T) {
	c := &resourcev1.ResourceClaim{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{
		Requests: []resourcev1.DeviceRequest{
			{Name: "a", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "c",
				Tolerations: []resourcev1.DeviceToleration{{Key: "k"}}}},
			{Name: "b", FirstAvailable: []resourcev1.DeviceSubRequest{{Name: "s", DeviceClassName: "c",
				AllocationMode: resourcev1.DeviceAllocationModeAll}}},
		},
	}}, Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{}}}
	resourceClaimResource.PrepareForCreate(c)
	want := []resourcev1.DeviceRequest{
		{Name: "a", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "c", AllocationMode: "ExactCount", Count: 1,
			Tolerations: []resourcev1.DeviceToleration{{Key: "k", Operator: "Equal"}}}},
		{Name: "b", FirstAvailable: []resourcev1.DeviceSubRequest{{Name: "s", DeviceClassName: "c", AllocationMode: "All"}}},
	}
	if diff := cmp.Diff(want, c.Spec.Devices.Requests); diff != "" {
		t.Errorf("defaulted requests (-want +got):\n%s", diff)
	}
	if c.Status.Allocation != nil || c.Generation != 1 {
		t.Errorf("after create: allocation %v, generation %d; want none and 1", c.Status.Allocation, c.Generation)
	}
}

func TestValidateResourceClaimTemplate(t *testing.T) {
	type rct = resourcev1.ResourceClaimTemplate
	base := func() *rct {
		c := &rct{ObjectMeta: metav1.ObjectMeta{Name: "gpu", Namespace: "default"}, Spec: resourcev1.ResourceClaimTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
			Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{
				{Name: "req-0", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "dra.example.com"}},
			}}},
		}}
		resourceClaimTemplateResource.PrepareForCreate(c)
		return c
	}
	runValidation(t, resourceClaimTemplateResource, base, []validationCase[*rct]{
		{name: "valid"},
		{"bad label", func(c *rct) { c.Spec.Labels = map[string]string{"a b": "x"} }, []string{errKey(invalid, "spec.metadata.labels")}},
		{"no class", func(c *rct) { c.Spec.Spec.Devices.Requests[0].Exactly.DeviceClassName = "" },
			[]string{errKey(required, "spec.spec.devices.requests[0].exactly.deviceClassName")}},
	})
	runUpdate(t, resourceClaimTemplateResource, false, base, []validationCase[*rct]{
		{"labels change", func(c *rct) { c.Labels = map[string]string{"a": "b"} }, nil},
		{"spec is immutable", func(c *rct) { c.Spec.Spec.Devices.Requests[0].Name = "req-1" }, []string{errKey(invalid, "spec")}},
	})
}

func TestValidateResourceSlice(t *testing.T) {
	type rs = resourcev1.ResourceSlice
	base := func() *rs {
		return &rs{ObjectMeta: metav1.ObjectMeta{Name: "node-1-gpu"}, Spec: resourcev1.ResourceSliceSpec{
			Driver:   "dra.example.com",
			Pool:     resourcev1.ResourcePool{Name: "cluster/node-1", Generation: 1, ResourceSliceCount: 1},
			NodeName: ptrTo("node-1"),
			Devices: []resourcev1.Device{{Name: "gpu-0", Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
				"model": {StringValue: ptrTo("a100")},
			}}},
		}}
	}
	runValidation(t, resourceSliceResource, base, []validationCase[*rs]{
		{name: "valid"},
		{"no driver", func(s *rs) { s.Spec.Driver = "" }, []string{errKey(required, "spec.driver")}},
		{"no pool", func(s *rs) { s.Spec.Pool.Name = "" }, []string{errKey(required, "spec.pool.name")}},
		{"zero slices", func(s *rs) { s.Spec.Pool.ResourceSliceCount = 0 }, []string{errKey(invalid, "spec.pool.resourceSliceCount")}},
		{"no node", func(s *rs) { s.Spec.NodeName = nil }, []string{errKey(required, "spec")}},
		{"node and all nodes", func(s *rs) { s.Spec.AllNodes = ptrTo(true) }, []string{errKey(invalid, "spec")}},
		{"duplicate device", func(s *rs) { s.Spec.Devices = append(s.Spec.Devices, resourcev1.Device{Name: "gpu-0"}) },
			[]string{errKey(duplicate, "spec.devices[1].name")}},
		{"attribute of two values", func(s *rs) {
			s.Spec.Devices[0].Attributes["model"] = resourcev1.DeviceAttribute{StringValue: ptrTo("a"), IntValue: ptrTo(int64(1))}
		}, []string{errKey(invalid, "spec.devices[0].attributes[model]")}},
		{"too many devices", func(s *rs) { s.Spec.Devices = make([]resourcev1.Device, 129) }, tooManyDevices()},
	})
	runUpdate(t, resourceSliceResource, false, base, []validationCase[*rs]{
		{"add a device", func(s *rs) { s.Spec.Devices = append(s.Spec.Devices, resourcev1.Device{Name: "gpu-1"}) }, nil},
		{"driver is immutable", func(s *rs) { s.Spec.Driver = "other.example.com" }, []string{errKey(invalid, "spec.driver")}},
		{"node is immutable", func(s *rs) { s.Spec.NodeName = ptrTo("node-2") }, []string{errKey(invalid, "spec.nodeName")}},
	})
	got := resourceSliceResource.FieldSet(base())
	if got["spec.nodeName"] != "node-1" || got["spec.driver"] != "dra.example.com" || got["spec.pool.name"] != "cluster/node-1" {
		t.Errorf("FieldSet = %v, want the node, driver and pool", got)
	}
}

// tooManyDevices is what 129 unnamed devices cause: TooMany for the
// list, a Required name for each and a Duplicate for all but the first.
func tooManyDevices() []string {
	want := []string{errKey(tooMany, "spec.devices")}
	for i := range 129 {
		p := "spec.devices[" + strconv.Itoa(i) + "].name"
		want = append(want, errKey(required, p))
		if i > 0 {
			want = append(want, errKey(duplicate, p))
		}
	}
	return want
}

func TestValidateDeviceTaintRule(t *testing.T) {
	type dtr = resourcev1.DeviceTaintRule
	base := func() *dtr {
		d := &dtr{ObjectMeta: metav1.ObjectMeta{Name: "maintenance"}, Spec: resourcev1.DeviceTaintRuleSpec{
			DeviceSelector: &resourcev1.DeviceTaintSelector{Driver: ptrTo("dra.example.com"), Pool: ptrTo("node-1")},
			Taint:          resourcev1.DeviceTaint{Key: "example.com/maintenance", Effect: resourcev1.DeviceTaintEffectNone},
		}}
		deviceTaintRuleResource.PrepareForCreate(d)
		return d
	}
	runValidation(t, deviceTaintRuleResource, base, []validationCase[*dtr]{
		{name: "valid"},
		{"no key", func(d *dtr) { d.Spec.Taint.Key = "" }, []string{errKey(required, "spec.taint.key")}},
		{"no effect", func(d *dtr) { d.Spec.Taint.Effect = "" }, []string{errKey(required, "spec.taint.effect")}},
		{"unknown effect", func(d *dtr) { d.Spec.Taint.Effect = "PreferNoSchedule" }, []string{errKey(notSupported, "spec.taint.effect")}},
		{"bad value", func(d *dtr) { d.Spec.Taint.Value = "a b" }, []string{errKey(invalid, "spec.taint.value")}},
		{"bad device", func(d *dtr) { d.Spec.DeviceSelector.Device = ptrTo("GPU 0") }, []string{errKey(invalid, "spec.deviceSelector.device")}},
	})
	cond := metav1.Condition{Type: "Testing", Status: metav1.ConditionTrue, Reason: "E2E", LastTransitionTime: ago(0), Message: "m"}
	runUpdate(t, deviceTaintRuleResource, true, base, []validationCase[*dtr]{
		{"condition", func(d *dtr) { d.Status.Conditions = []metav1.Condition{cond} }, nil},
		{"condition without reason", func(d *dtr) {
			c := cond
			c.Reason = ""
			d.Status.Conditions = []metav1.Condition{c}
		}, []string{errKey(required, "status.conditions[0].reason")}},
	})
	runUpdate(t, deviceTaintRuleResource, false, base, []validationCase[*dtr]{
		{"effect changes", func(d *dtr) { d.Spec.Taint.Effect = resourcev1.DeviceTaintEffectNoExecute }, nil},
		{"status writes are ignored", func(d *dtr) { d.Status.Conditions = []metav1.Condition{{Type: "bad type!"}} }, nil},
	})
	if d := base(); d.Spec.Taint.TimeAdded == nil || d.Generation != 1 {
		t.Errorf("after create: timeAdded %v, generation %d; want a time and 1", d.Spec.Taint.TimeAdded, d.Generation)
	}
}
