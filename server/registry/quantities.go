package registry

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Names of resources as Kubernetes classifies them, for LimitRange and
// ResourceQuota validation.
var (
	// containerResources may be requested by a container.
	containerResources = map[corev1.ResourceName]bool{
		corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
	}
	// standardResources are the unqualified resource names.
	standardResources = map[corev1.ResourceName]bool{
		corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
		corev1.ResourceRequestsCPU: true, corev1.ResourceRequestsMemory: true, corev1.ResourceRequestsEphemeralStorage: true,
		corev1.ResourceLimitsCPU: true, corev1.ResourceLimitsMemory: true, corev1.ResourceLimitsEphemeralStorage: true,
		corev1.ResourcePods: true, corev1.ResourceQuotas: true, corev1.ResourceServices: true,
		corev1.ResourceReplicationControllers: true, corev1.ResourceSecrets: true, corev1.ResourceConfigMaps: true,
		corev1.ResourcePersistentVolumeClaims: true, corev1.ResourceStorage: true, corev1.ResourceRequestsStorage: true,
		corev1.ResourceServicesNodePorts: true, corev1.ResourceServicesLoadBalancers: true,
	}
	// quotaResources are the unqualified names a quota may limit: the
	// standard ones but storage.
	quotaResources = func() map[corev1.ResourceName]bool {
		m := map[corev1.ResourceName]bool{}
		for k := range standardResources {
			m[k] = k != corev1.ResourceStorage
		}
		return m
	}()
	// integerResources are counted in whole numbers.
	integerResources = map[corev1.ResourceName]bool{
		corev1.ResourcePods: true, corev1.ResourceQuotas: true, corev1.ResourceServices: true,
		corev1.ResourceReplicationControllers: true, corev1.ResourceSecrets: true, corev1.ResourceConfigMaps: true,
		corev1.ResourcePersistentVolumeClaims: true, corev1.ResourceServicesNodePorts: true, corev1.ResourceServicesLoadBalancers: true,
	}
)

// validateResourceName checks a resource name: qualified, and standard
// when it has no prefix.
func validateResourceName(name corev1.ResourceName, path *field.Path) field.ErrorList {
	errs := validateResourceNameSyntax(string(name), path)
	if len(errs) == 0 && !strings.Contains(string(name), "/") && !standardResources[name] && !isHugePages(name) {
		errs = append(errs, field.Invalid(path, name, "must be a standard resource type or fully qualified"))
	}
	return errs
}

// validateContainerResourceName also requires an unqualified name to be
// one a container may request.
func validateContainerResourceName(name corev1.ResourceName, path *field.Path) field.ErrorList {
	errs := validateResourceName(name, path)
	if len(errs) == 0 && !strings.Contains(string(name), "/") && !containerResources[name] && !isHugePages(name) {
		errs = append(errs, field.Invalid(path, name, "must be a standard resource for containers"))
	}
	return errs
}

// validateQuotaResourceName checks a name a quota limits.
func validateQuotaResourceName(name corev1.ResourceName, path *field.Path) field.ErrorList {
	errs := validateResourceName(name, path)
	if len(errs) == 0 && !strings.Contains(string(name), "/") && !quotaResources[name] {
		errs = append(errs, field.Invalid(path, name, "must be a standard resource for quota"))
	}
	return errs
}

// validateQuantityValue checks a quantity is not negative and, for the
// resources counted in whole numbers, an integer.
func validateQuantityValue(name corev1.ResourceName, q resource.Quantity, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if q.Sign() < 0 {
		errs = append(errs, field.Invalid(path, q.String(), apivalidation.IsNegativeErrorMsg))
	}
	if integerResources[name] && q.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(path, q, "must be an integer"))
	}
	return errs
}

func isHugePages(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) ||
		strings.HasPrefix(string(name), corev1.ResourceRequestsHugePagesPrefix)
}

// validateResourceNameSyntax checks a name is qualified (PREFIX/NAME or
// NAME).
func validateResourceNameSyntax(name string, path *field.Path) field.ErrorList {
	return messages(path, name, validation.IsQualifiedName(name))
}
