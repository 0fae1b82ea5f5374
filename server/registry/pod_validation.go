package registry

import (
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxDNSNameservers and maxDNSSearches are the resolv.conf limits
// Kubernetes enforces on dnsConfig.
const (
	maxDNSNameservers = 3
	maxDNSSearches    = 32
)

// validatePodSpec checks a pod spec, for pods and pod templates. path is
// where the spec sits in the object ("spec", "spec.template.spec").
func validatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	volumes, errs := validateVolumes(spec.Volumes, path.Child("volumes"))
	errs = append(errs, validateContainers(spec, volumes, path)...)
	errs = append(errs, validateEnum(spec.RestartPolicy, path.Child("restartPolicy"),
		corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)...)
	errs = append(errs, validateDNSPolicy(spec, path)...)
	errs = append(errs, v1validation.ValidateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	errs = append(errs, validatePodSpecNames(spec, path)...)
	errs = append(errs, validateTolerations(spec.Tolerations, path.Child("tolerations"))...)
	errs = append(errs, validatePodDurations(spec, path)...)
	errs = append(errs, validateSysctls(spec, path.Child("securityContext", "sysctls"))...)
	if spec.Resources != nil {
		errs = append(errs, validateResources(spec.Resources, path.Child("resources"))...)
	}
	return errs
}

// validatePodSpecNames checks the spec fields that name other objects or
// DNS names.
func validatePodSpecNames(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	subdomains := []struct {
		name, value string
	}{
		{"serviceAccountName", spec.ServiceAccountName},
		{"nodeName", spec.NodeName},
		{"schedulerName", spec.SchedulerName},
		{"priorityClassName", spec.PriorityClassName},
	}
	for _, f := range subdomains {
		if f.value != "" {
			errs = append(errs, validateDNSSubdomain(f.value, path.Child(f.name))...)
		}
	}
	if spec.Hostname != "" {
		errs = append(errs, validateDNSLabel(spec.Hostname, path.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateDNSLabel(spec.Subdomain, path.Child("subdomain"))...)
	}
	return errs
}

func validatePodDurations(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*g, path.Child("terminationGracePeriodSeconds"))...)
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && (*d < 1 || *d > math.MaxInt32) {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *d, validation.InclusiveRangeError(1, math.MaxInt32)))
	}
	return errs
}

func validateDNSPolicy(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	errs := validateEnum(spec.DNSPolicy, path.Child("dnsPolicy"),
		corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)
	cfgPath := path.Child("dnsConfig")
	cfg := spec.DNSConfig
	if cfg == nil {
		if spec.DNSPolicy == corev1.DNSNone {
			errs = append(errs, field.Required(cfgPath, "must provide `dnsConfig` when `dnsPolicy` is None"))
		}
		return errs
	}
	nsPath := cfgPath.Child("nameservers")
	switch {
	case len(cfg.Nameservers) > maxDNSNameservers:
		errs = append(errs, field.TooMany(nsPath, len(cfg.Nameservers), maxDNSNameservers))
	case len(cfg.Nameservers) == 0 && spec.DNSPolicy == corev1.DNSNone:
		errs = append(errs, field.Required(nsPath, "must provide at least one DNS nameserver when `dnsPolicy` is None"))
	}
	for i, ns := range cfg.Nameservers {
		errs = append(errs, validateIP(ns, nsPath.Index(i))...)
	}
	if len(cfg.Searches) > maxDNSSearches {
		errs = append(errs, field.TooMany(cfgPath.Child("searches"), len(cfg.Searches), maxDNSSearches))
	}
	for i, s := range cfg.Searches {
		errs = append(errs, validateDNSSubdomain(strings.TrimSuffix(s, "."), cfgPath.Child("searches").Index(i))...)
	}
	return errs
}

func validateTolerations(ts []corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range ts {
		errs = append(errs, validateToleration(t, path.Index(i))...)
	}
	return errs
}

func validateToleration(t corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Key != "" {
		errs = append(errs, messages(path.Child("key"), t.Key, validation.IsQualifiedName(t.Key))...)
	}
	opPath := path.Child("operator")
	switch t.Operator {
	case corev1.TolerationOpEqual, "":
		if t.Key == "" {
			errs = append(errs, field.Invalid(opPath, t.Operator, "must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		errs = append(errs, messages(path.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
	case corev1.TolerationOpExists:
		if t.Value != "" {
			errs = append(errs, field.Invalid(path.Child("value"), t.Value, "must be empty when `operator` is 'Exists'"))
		}
	default:
		errs = append(errs, field.NotSupported(opPath, t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
	}
	effPath := path.Child("effect")
	errs = append(errs, validateOptionalEnum(t.Effect, effPath,
		corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		errs = append(errs, field.Invalid(effPath, t.Effect, "must be 'NoExecute' when `tolerationSeconds` is set"))
	}
	return errs
}

// validateVolumes checks the pod's volumes and returns the names of the
// valid ones, for the containers' volume mounts.
func validateVolumes(vols []corev1.Volume, path *field.Path) (map[string]bool, field.ErrorList) {
	names := make(map[string]bool, len(vols))
	var errs field.ErrorList
	for i := range vols {
		v := &vols[i]
		vp := path.Index(i)
		nameErrs := validateDNSLabel(v.Name, vp.Child("name"))
		switch {
		case v.Name == "":
			nameErrs = field.ErrorList{field.Required(vp.Child("name"), "")}
		case names[v.Name]:
			nameErrs = append(nameErrs, field.Duplicate(vp.Child("name"), v.Name))
		}
		errs = append(errs, nameErrs...)
		errs = append(errs, validateVolumeSource(&v.VolumeSource, vp)...)
		if len(nameErrs) == 0 {
			names[v.Name] = true
		}
	}
	return names, errs
}

// validateVolumeSource requires exactly one source and checks the
// required field of the common ones and the sources of projected volumes.
func validateVolumeSource(src *corev1.VolumeSource, path *field.Path) field.ErrorList {
	set := setMembers(src)
	switch {
	case len(set) == 0:
		return field.ErrorList{field.Required(path, "must specify a volume type")}
	case len(set) > 1:
		return field.ErrorList{field.Forbidden(path.Child(set[1]), "may not specify more than 1 volume type")}
	}
	var required *field.Path
	switch {
	case src.HostPath != nil && src.HostPath.Path == "":
		required = path.Child("hostPath", "path")
	case src.Secret != nil && src.Secret.SecretName == "":
		required = path.Child("secret", "secretName")
	case src.ConfigMap != nil && src.ConfigMap.Name == "":
		required = path.Child("configMap", "name")
	case src.PersistentVolumeClaim != nil && src.PersistentVolumeClaim.ClaimName == "":
		required = path.Child("persistentVolumeClaim", "claimName")
	case src.Image != nil && src.Image.Reference == "":
		required = path.Child("image", "reference")
	}
	if required != nil {
		return field.ErrorList{field.Required(required, "")}
	}
	if d := src.EmptyDir; d != nil && d.SizeLimit != nil && d.SizeLimit.Sign() < 0 {
		return field.ErrorList{field.Invalid(path.Child("emptyDir", "sizeLimit"), d.SizeLimit.String(), apivalidation.IsNegativeErrorMsg)}
	}
	if src.Projected != nil {
		return validateProjected(src.Projected, path.Child("projected"))
	}
	if src.Image != nil {
		return validateEnum(src.Image.PullPolicy, path.Child("image", "pullPolicy"),
			corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)
	}
	return nil
}

// validateResources checks a container's (or the pod's) requests and
// limits: known resource names, no negative quantities, and no request
// above its limit.
func validateResources(r *corev1.ResourceRequirements, path *field.Path) field.ErrorList {
	limPath, reqPath := path.Child("limits"), path.Child("requests")
	errs := validateContainerResourceNames(r.Limits, limPath)
	errs = append(errs, validateContainerResourceNames(r.Requests, reqPath)...)
	errs = append(errs, validateResourceList(r.Limits, limPath)...)
	errs = append(errs, validateResourceList(r.Requests, reqPath)...)
	for _, name := range sortedResourceNames(r.Requests) {
		limit, ok := r.Limits[name]
		if req := r.Requests[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(reqPath.Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		}
	}
	return errs
}

// validateContainerResourceNames allows the standard container resources
// and extended resources, which carry a domain prefix.
func validateContainerResourceNames(list corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedResourceNames(list) {
		s := string(name)
		switch {
		case strings.Contains(s, "/"), strings.HasPrefix(s, corev1.ResourceHugePagesPrefix):
		case name == corev1.ResourceCPU, name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage:
		default:
			errs = append(errs, field.Invalid(path.Key(s), name, "must be a standard resource for containers"))
		}
	}
	return errs
}
