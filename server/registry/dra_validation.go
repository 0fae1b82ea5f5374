package registry

import (
	"encoding/json"
	"strings"

	"github.com/google/cel-go/cel"
	resourcev1 "k8s.io/api/resource/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits of the resource.k8s.io kinds, as Kubernetes sets them.
const (
	deviceSelectorsMaxSize     = 32 // selectors of a class or request
	deviceConfigMaxSize        = 32 // configurations of a class or claim
	deviceRequestsMaxSize      = 32 // requests of a claim
	firstAvailableMaxSize      = 8  // subrequests of a request
	deviceTolerationsMaxLength = 16 // tolerations of a request
)

// deviceScope is what a device selector's CEL expression reads.
var deviceScope = []string{"device"}

func validateDeviceClass(c *resourcev1.DeviceClass) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	errs = append(errs, validateDeviceSelectors(c.Spec.Selectors, specPath.Child("selectors"))...)
	cp := specPath.Child("config")
	if len(c.Spec.Config) > deviceConfigMaxSize {
		errs = append(errs, field.TooMany(cp, len(c.Spec.Config), deviceConfigMaxSize))
	}
	for i, cfg := range c.Spec.Config {
		errs = append(errs, validateDeviceConfiguration(&cfg.DeviceConfiguration, cp.Index(i))...)
	}
	if n := c.Spec.ExtendedResourceName; n != nil {
		errs = append(errs, messages(specPath.Child("extendedResourceName"), *n, validation.IsQualifiedName(*n))...)
	}
	return errs
}

func validateDeviceSelectors(sels []resourcev1.DeviceSelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(sels) > deviceSelectorsMaxSize {
		errs = append(errs, field.TooMany(path, len(sels), deviceSelectorsMaxSize))
	}
	for i, s := range sels {
		sp := path.Index(i)
		if s.CEL == nil {
			errs = append(errs, field.Required(sp.Child("cel"), ""))
			continue
		}
		ep := sp.Child("cel", "expression")
		if len(s.CEL.Expression) > resourcev1.CELSelectorExpressionMaxLength {
			errs = append(errs, field.TooLong(ep, "", resourcev1.CELSelectorExpressionMaxLength))
			continue
		}
		errs = append(errs, validateExpression(s.CEL.Expression, deviceScope, cel.BoolType, ep)...)
	}
	return errs
}

// validateDeviceConfiguration checks the one configuration minik knows:
// opaque parameters for a driver, a JSON object of at most 10 KiB.
func validateDeviceConfiguration(c *resourcev1.DeviceConfiguration, path *field.Path) field.ErrorList {
	if c.Opaque == nil {
		return field.ErrorList{field.Required(path.Child("opaque"), "")}
	}
	op := path.Child("opaque")
	errs := validateDriverName(c.Opaque.Driver, op.Child("driver"))
	pp := op.Child("parameters")
	raw := rawJSON(c.Opaque.Parameters)
	var obj map[string]any
	switch {
	case len(raw) == 0:
		errs = append(errs, field.Required(pp, ""))
	case len(raw) > resourcev1.OpaqueParametersMaxLength:
		errs = append(errs, field.TooLong(pp, "", resourcev1.OpaqueParametersMaxLength))
	case json.Unmarshal(raw, &obj) != nil || obj == nil:
		errs = append(errs, field.Invalid(pp, "<value omitted>", "must be a valid JSON object"))
	}
	return errs
}

// rawJSON gives the JSON of an extension, decoded or not.
func rawJSON(ext runtime.RawExtension) []byte {
	if len(ext.Raw) > 0 || ext.Object == nil {
		return ext.Raw
	}
	b, _ := json.Marshal(ext.Object)
	return b
}

// validateDriverName checks a DRA driver name: a lower-case DNS subdomain
// of at most 63 characters.
func validateDriverName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	if len(name) > resourcev1.DriverNameMaxLength {
		return field.ErrorList{field.TooLong(path, "", resourcev1.DriverNameMaxLength)}
	}
	return validateDNSSubdomain(name, path)
}

// validatePoolName checks a pool name: DNS subdomains separated by
// slashes, at most 253 characters.
func validatePoolName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	if len(name) > resourcev1.PoolNameMaxLength {
		return field.ErrorList{field.TooLong(path, "", resourcev1.PoolNameMaxLength)}
	}
	var errs field.ErrorList
	for _, part := range strings.Split(name, "/") {
		errs = append(errs, validateDNSSubdomain(part, path)...)
	}
	return errs
}

func validateResourceClaim(c *resourcev1.ResourceClaim) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateClaimSpec(&c.Spec, specPath)...)
}

func validateResourceClaimTemplate(t *resourcev1.ResourceClaimTemplate) field.ErrorList {
	errs := validateMeta(&t.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	mp := specPath.Child("metadata")
	errs = append(errs, v1validation.ValidateLabels(t.Spec.Labels, mp.Child("labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(t.Spec.Annotations, mp.Child("annotations"))...)
	return append(errs, validateClaimSpec(&t.Spec.Spec, specPath.Child("spec"))...)
}

// validateClaimSpec checks what a claim asks for: named requests, each of
// exactly one form, and constraints and configurations that name them.
func validateClaimSpec(s *resourcev1.ResourceClaimSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	dp := path.Child("devices")
	rp := dp.Child("requests")
	if len(s.Devices.Requests) > deviceRequestsMaxSize {
		errs = append(errs, field.TooMany(rp, len(s.Devices.Requests), deviceRequestsMaxSize))
	}
	names := sets.New[string]()
	for i := range s.Devices.Requests {
		req := &s.Devices.Requests[i]
		ip := rp.Index(i)
		errs = append(errs, validateRequestName(req.Name, names, ip.Child("name"))...)
		for _, sub := range req.FirstAvailable {
			names.Insert(req.Name + "/" + sub.Name)
		}
		errs = append(errs, validateDeviceRequest(req, ip)...)
	}
	for i, c := range s.Devices.Constraints {
		cp := dp.Child("constraints").Index(i)
		errs = append(errs, validateRequestRefs(c.Requests, names, cp.Child("requests"))...)
		switch {
		case c.MatchAttribute == nil && c.DistinctAttribute == nil:
			errs = append(errs, field.Required(cp, "exactly one of `matchAttribute` or `distinctAttribute` is required"))
		case c.MatchAttribute != nil && c.DistinctAttribute != nil:
			errs = append(errs, field.Invalid(cp, "", "exactly one of `matchAttribute` or `distinctAttribute` is required, but multiple fields are set"))
		case c.MatchAttribute != nil:
			errs = append(errs, validateFullyQualifiedName(string(*c.MatchAttribute), cp.Child("matchAttribute"))...)
		default:
			errs = append(errs, validateFullyQualifiedName(string(*c.DistinctAttribute), cp.Child("distinctAttribute"))...)
		}
	}
	cfp := dp.Child("config")
	if len(s.Devices.Config) > deviceConfigMaxSize {
		errs = append(errs, field.TooMany(cfp, len(s.Devices.Config), deviceConfigMaxSize))
	}
	for i, c := range s.Devices.Config {
		errs = append(errs, validateRequestRefs(c.Requests, names, cfp.Index(i).Child("requests"))...)
		errs = append(errs, validateDeviceConfiguration(&c.DeviceConfiguration, cfp.Index(i))...)
	}
	return errs
}

// validateRequestName requires a DNS-label name not in seen, and adds it.
func validateRequestName(name string, seen sets.Set[string], path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	errs := validateDNSLabel(name, path)
	if seen.Has(name) {
		errs = append(errs, field.Duplicate(path, name))
	}
	seen.Insert(name)
	return errs
}

// validateRequestRefs requires every reference to name a request ("req")
// or subrequest ("req/sub") of the claim.
func validateRequestRefs(refs []string, names sets.Set[string], path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ref := range refs {
		if !names.Has(ref) {
			errs = append(errs, field.Invalid(path.Index(i), ref, "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'"))
		}
	}
	return errs
}

func validateDeviceRequest(req *resourcev1.DeviceRequest, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case req.Exactly == nil && len(req.FirstAvailable) == 0:
		return field.ErrorList{field.Required(path, "exactly one of `exactly` or `firstAvailable` is required")}
	case req.Exactly != nil && len(req.FirstAvailable) > 0:
		return field.ErrorList{field.Invalid(path, "", "exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set")}
	case req.Exactly != nil:
		e := req.Exactly
		ep := path.Child("exactly")
		errs = append(errs, validateDNSSubdomainRequired(e.DeviceClassName, ep.Child("deviceClassName"))...)
		errs = append(errs, validateDeviceSelectors(e.Selectors, ep.Child("selectors"))...)
		errs = append(errs, validateAllocationMode(e.AllocationMode, e.Count, ep)...)
		errs = append(errs, validateDeviceTolerations(e.Tolerations, ep.Child("tolerations"))...)
	default:
		fp := path.Child("firstAvailable")
		if len(req.FirstAvailable) > firstAvailableMaxSize {
			errs = append(errs, field.TooMany(fp, len(req.FirstAvailable), firstAvailableMaxSize))
		}
		subs := sets.New[string]()
		for i, sub := range req.FirstAvailable {
			sp := fp.Index(i)
			errs = append(errs, validateRequestName(sub.Name, subs, sp.Child("name"))...)
			errs = append(errs, validateDNSSubdomainRequired(sub.DeviceClassName, sp.Child("deviceClassName"))...)
			errs = append(errs, validateDeviceSelectors(sub.Selectors, sp.Child("selectors"))...)
			errs = append(errs, validateAllocationMode(sub.AllocationMode, sub.Count, sp)...)
			errs = append(errs, validateDeviceTolerations(sub.Tolerations, sp.Child("tolerations"))...)
		}
	}
	return errs
}

func validateDNSSubdomainRequired(v string, path *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return validateDNSSubdomain(v, path)
}

// validateAllocationMode checks a request's mode (defaulted to
// ExactCount) and count: positive for ExactCount, unset for All.
func validateAllocationMode(mode resourcev1.DeviceAllocationMode, count int64, path *field.Path) field.ErrorList {
	errs := validateEnum(mode, path.Child("allocationMode"),
		resourcev1.DeviceAllocationModeExactCount, resourcev1.DeviceAllocationModeAll)
	switch {
	case mode == resourcev1.DeviceAllocationModeExactCount && count <= 0:
		errs = append(errs, field.Invalid(path.Child("count"), count, "must be greater than zero"))
	case mode == resourcev1.DeviceAllocationModeAll && count != 0:
		errs = append(errs, field.Invalid(path.Child("count"), count, "must not be specified when allocationMode is 'All'"))
	}
	return errs
}

func validateDeviceTolerations(ts []resourcev1.DeviceToleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(ts) > deviceTolerationsMaxLength {
		errs = append(errs, field.TooMany(path, len(ts), deviceTolerationsMaxLength))
	}
	for i, t := range ts {
		tp := path.Index(i)
		if t.Key != "" {
			errs = append(errs, messages(tp.Child("key"), t.Key, validation.IsQualifiedName(t.Key))...)
		}
		errs = append(errs, validateEnum(t.Operator, tp.Child("operator"),
			resourcev1.DeviceTolerationOpEqual, resourcev1.DeviceTolerationOpExists)...)
		switch {
		case t.Operator == resourcev1.DeviceTolerationOpExists && t.Value != "":
			errs = append(errs, field.Invalid(tp.Child("value"), t.Value, "must be empty when `operator` is 'Exists'"))
		case t.Operator == resourcev1.DeviceTolerationOpEqual:
			errs = append(errs, messages(tp.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
		}
		errs = append(errs, validateOptionalEnum(t.Effect, tp.Child("effect"), deviceTaintEffects...)...)
	}
	return errs
}

var deviceTaintEffects = []resourcev1.DeviceTaintEffect{
	resourcev1.DeviceTaintEffectNone, resourcev1.DeviceTaintEffectNoSchedule, resourcev1.DeviceTaintEffectNoExecute,
}

// validateFullyQualifiedName checks an attribute name with its domain
// ("dra.example.com/model").
func validateFullyQualifiedName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	errs := messages(path, name, validation.IsQualifiedName(name))
	if !strings.Contains(name, "/") {
		errs = append(errs, field.Invalid(path, name, "a fully qualified name must be a domain and a name separated by a slash"))
	}
	return errs
}

// validateClaimStatus checks a status write: an allocation is set once
// (deallocation clears it), claims are reserved only while allocated,
// and the results name their request, driver, pool and device.
func validateClaimStatus(s, old *resourcev1.ResourceClaimStatus) field.ErrorList {
	var errs field.ErrorList
	ap := statusPath.Child("allocation")
	if s.Allocation != nil && old.Allocation != nil {
		errs = immutable(errs, ap, s.Allocation, old.Allocation)
	}
	if a := s.Allocation; a != nil {
		rp := ap.Child("devices", "results")
		if len(a.Devices.Results) > resourcev1.AllocationResultsMaxSize {
			errs = append(errs, field.TooMany(rp, len(a.Devices.Results), resourcev1.AllocationResultsMaxSize))
		}
		for i, r := range a.Devices.Results {
			ip := rp.Index(i)
			if r.Request == "" {
				errs = append(errs, field.Required(ip.Child("request"), ""))
			}
			errs = append(errs, validateDriverName(r.Driver, ip.Child("driver"))...)
			errs = append(errs, validatePoolName(r.Pool, ip.Child("pool"))...)
			errs = append(errs, validateDeviceName(r.Device, ip.Child("device"))...)
		}
	}
	resp := statusPath.Child("reservedFor")
	if len(s.ReservedFor) > 0 && s.Allocation == nil {
		errs = append(errs, field.Forbidden(resp, "may not be specified when `allocation` is not set"))
	}
	if len(s.ReservedFor) > resourcev1.ResourceClaimReservedForMaxSize {
		errs = append(errs, field.TooMany(resp, len(s.ReservedFor), resourcev1.ResourceClaimReservedForMaxSize))
	}
	uids := sets.New[string]()
	for i, ref := range s.ReservedFor {
		ip := resp.Index(i)
		if ref.Resource == "" {
			errs = append(errs, field.Required(ip.Child("resource"), ""))
		}
		if ref.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		}
		switch uid := string(ref.UID); {
		case uid == "":
			errs = append(errs, field.Required(ip.Child("uid"), ""))
		case uids.Has(uid):
			errs = append(errs, field.Duplicate(ip.Child("uid"), uid))
		default:
			uids.Insert(uid)
		}
	}
	for i, d := range s.Devices {
		ip := statusPath.Child("devices").Index(i)
		errs = append(errs, validateDriverName(d.Driver, ip.Child("driver"))...)
		errs = append(errs, validatePoolName(d.Pool, ip.Child("pool"))...)
		errs = append(errs, validateDeviceName(d.Device, ip.Child("device"))...)
		errs = append(errs, v1validation.ValidateConditions(d.Conditions, ip.Child("conditions"))...)
	}
	return errs
}

func validateDeviceName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return validateDNSLabel(name, path)
}

// validateResourceSlice checks a slice as Kubernetes does: a driver, a
// pool with a positive slice count, exactly one way of naming its nodes,
// and at most 128 uniquely named devices.
func validateResourceSlice(s *resourcev1.ResourceSlice) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	errs = append(errs, validateDriverName(s.Spec.Driver, specPath.Child("driver"))...)
	pp := specPath.Child("pool")
	errs = append(errs, validatePoolName(s.Spec.Pool.Name, pp.Child("name"))...)
	if s.Spec.Pool.Generation < 0 {
		errs = append(errs, field.Invalid(pp.Child("generation"), s.Spec.Pool.Generation, apivalidation.IsNegativeErrorMsg))
	}
	if s.Spec.Pool.ResourceSliceCount <= 0 {
		errs = append(errs, field.Invalid(pp.Child("resourceSliceCount"), s.Spec.Pool.ResourceSliceCount, "must be greater than zero"))
	}
	errs = append(errs, validateSliceNodes(&s.Spec)...)
	dp := specPath.Child("devices")
	if len(s.Spec.Devices) > resourcev1.ResourceSliceMaxDevices {
		errs = append(errs, field.TooMany(dp, len(s.Spec.Devices), resourcev1.ResourceSliceMaxDevices))
	}
	names := sets.New[string]()
	for i, d := range s.Spec.Devices {
		ip := dp.Index(i)
		errs = append(errs, validateDeviceName(d.Name, ip.Child("name"))...)
		if names.Has(d.Name) {
			errs = append(errs, field.Duplicate(ip.Child("name"), d.Name))
		}
		names.Insert(d.Name)
		for name, a := range d.Attributes {
			ap := ip.Child("attributes").Key(string(name))
			errs = append(errs, messages(ap, name, validation.IsQualifiedName(string(name)))...)
			if n := len(setMembers(&a)) + countSet(a.IntValues, a.BoolValues, a.StringValues, a.VersionValues); n != 1 {
				errs = append(errs, field.Invalid(ap, "", "exactly one value must be specified"))
			}
		}
		for name := range d.Capacity {
			cp := ip.Child("capacity").Key(string(name))
			errs = append(errs, messages(cp, name, validation.IsQualifiedName(string(name)))...)
		}
	}
	return errs
}

// countSet counts the non-nil slices among lists.
func countSet[A, B, C, D any](a []A, b []B, c []C, d []D) int {
	n := 0
	for _, set := range []bool{a != nil, b != nil, c != nil, d != nil} {
		if set {
			n++
		}
	}
	return n
}

// validateSliceNodes requires exactly one of nodeName, nodeSelector,
// allNodes and perDeviceNodeSelection.
func validateSliceNodes(s *resourcev1.ResourceSliceSpec) field.ErrorList {
	var errs field.ErrorList
	set := 0
	if s.NodeName != nil {
		set++
		errs = append(errs, validateDNSSubdomainRequired(*s.NodeName, specPath.Child("nodeName"))...)
	}
	if s.NodeSelector != nil {
		set++
		if len(s.NodeSelector.NodeSelectorTerms) == 0 {
			errs = append(errs, field.Required(specPath.Child("nodeSelector", "nodeSelectorTerms"), "must have at least one node selector term"))
		}
	}
	if ptrOr(s.AllNodes, false) {
		set++
	}
	if ptrOr(s.PerDeviceNodeSelection, false) {
		set++
	}
	const one = "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required"
	switch {
	case set == 0:
		errs = append(errs, field.Required(specPath, one))
	case set > 1:
		errs = append(errs, field.Invalid(specPath, "", one+", but multiple fields are set"))
	}
	return errs
}

// validateDeviceTaintRule checks a taint (key, value, effect) and the
// selector of the devices it applies to.
func validateDeviceTaintRule(d *resourcev1.DeviceTaintRule) field.ErrorList {
	errs := validateMeta(&d.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	tp := specPath.Child("taint")
	t := d.Spec.Taint
	if t.Key == "" {
		errs = append(errs, field.Required(tp.Child("key"), ""))
	} else {
		errs = append(errs, messages(tp.Child("key"), t.Key, validation.IsQualifiedName(t.Key))...)
	}
	errs = append(errs, messages(tp.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
	errs = append(errs, validateEnum(t.Effect, tp.Child("effect"), deviceTaintEffects...)...)
	if sel := d.Spec.DeviceSelector; sel != nil {
		sp := specPath.Child("deviceSelector")
		if sel.Driver != nil {
			errs = append(errs, validateDriverName(*sel.Driver, sp.Child("driver"))...)
		}
		if sel.Pool != nil {
			errs = append(errs, validatePoolName(*sel.Pool, sp.Child("pool"))...)
		}
		if sel.Device != nil {
			errs = append(errs, validateDeviceName(*sel.Device, sp.Child("device"))...)
		}
	}
	return errs
}

func validateDeviceTaintRuleStatus(s *resourcev1.DeviceTaintRuleStatus) field.ErrorList {
	cp := statusPath.Child("conditions")
	errs := v1validation.ValidateConditions(s.Conditions, cp)
	if len(s.Conditions) > resourcev1.DeviceTaintRuleStatusMaxConditions {
		errs = append(errs, field.TooMany(cp, len(s.Conditions), resourcev1.DeviceTaintRuleStatusMaxConditions))
	}
	return errs
}
