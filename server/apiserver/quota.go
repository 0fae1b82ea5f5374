package apiserver

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/minik-dev/minik/server/registry"
)

// legacyCounted are the kinds a quota also counts by their plain plural
// name ("pods", "secrets"), besides count/RESOURCE.
var legacyCounted = map[string]bool{
	"pods": true, "services": true, "replicationcontrollers": true, "resourcequotas": true,
	"secrets": true, "configmaps": true, "persistentvolumeclaims": true,
}

// countName is the object count quota name of res: count/pods,
// count/poddisruptionbudgets.policy.
func countName(res *registry.Resource) corev1.ResourceName {
	if res.Group == "" {
		return corev1.ResourceName("count/" + res.Name)
	}
	return corev1.ResourceName("count/" + res.Name + "." + res.Group)
}

// quotaTracks reports whether objects of res can use quota resource name.
func quotaTracks(res *registry.Resource, name corev1.ResourceName) bool {
	switch {
	case name == countName(res):
		return true
	case res.Group == "" && legacyCounted[res.Name] && string(name) == res.Name:
		return true
	case res.Group == "" && res.Name == "pods":
		return isPodComputeName(name)
	case res.Group == "" && res.Name == "services":
		return name == corev1.ResourceServicesNodePorts || name == corev1.ResourceServicesLoadBalancers
	}
	return false
}

func isPodComputeName(name corev1.ResourceName) bool {
	s := string(name)
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage ||
		strings.HasPrefix(s, "requests.") || strings.HasPrefix(s, "limits.") || strings.HasPrefix(s, corev1.ResourceHugePagesPrefix)
}

// quotaUsage is what obj of res consumes of quota, as Kubernetes' quota
// evaluators count it: one of its count/ name (and legacy name), and for
// pods that still run their compute requests and limits, for services
// their node ports and load balancer.
func quotaUsage(res *registry.Resource, obj runtime.Object, now time.Time) corev1.ResourceList {
	one := *resource.NewQuantity(1, resource.DecimalSI)
	u := corev1.ResourceList{countName(res): one}
	if res.Group != "" {
		return u
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		if podActive(o, now) {
			addPodCompute(u, o)
		}
	case *corev1.Service:
		u[corev1.ResourceServices] = one
		addServicePorts(u, o)
	default:
		if legacyCounted[res.Name] {
			u[corev1.ResourceName(res.Name)] = one
		}
	}
	return u
}

// podActive reports whether a pod still uses compute quota: not finished,
// and not past the grace period of its deletion.
func podActive(p *corev1.Pod, now time.Time) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil {
		end := p.DeletionTimestamp.Add(time.Duration(*p.DeletionGracePeriodSeconds) * time.Second)
		return !now.After(end)
	}
	return true
}

func addPodCompute(u corev1.ResourceList, p *corev1.Pod) {
	u[corev1.ResourcePods] = *resource.NewQuantity(1, resource.DecimalSI)
	opts := resourcehelper.PodResourcesOptions{}
	for k, v := range resourcehelper.PodRequests(p, opts) {
		switch k {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
			u[k] = v.DeepCopy()
			u["requests."+k] = v.DeepCopy()
		default:
			if strings.HasPrefix(string(k), corev1.ResourceHugePagesPrefix) || isExtendedResource(k) {
				u["requests."+k] = v.DeepCopy()
			}
		}
	}
	for k, v := range resourcehelper.PodLimits(p, opts) {
		switch k {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
			u["limits."+k] = v.DeepCopy()
		}
	}
}

// isExtendedResource reports whether name is an extended resource
// (example.com/dongle): one with a domain outside kubernetes.io, which
// quota counts by its request alone, as requests.NAME.
func isExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	domain, _, ok := strings.Cut(s, "/")
	if !ok || strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return domain != "kubernetes.io" && !strings.HasSuffix(domain, ".kubernetes.io")
}

func addServicePorts(u corev1.ResourceList, s *corev1.Service) {
	ports := int64(len(s.Spec.Ports))
	switch s.Spec.Type {
	case corev1.ServiceTypeNodePort:
		u[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(ports, resource.DecimalSI)
	case corev1.ServiceTypeLoadBalancer:
		if a := s.Spec.AllocateLoadBalancerNodePorts; a != nil && !*a {
			ports = 0
			for _, p := range s.Spec.Ports {
				if p.NodePort != 0 {
					ports++
				}
			}
		}
		u[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(ports, resource.DecimalSI)
		u[corev1.ResourceServicesLoadBalancers] = *resource.NewQuantity(1, resource.DecimalSI)
	}
}

// quotaScopes are the scopes of q, from spec.scopes and its scope
// selector.
func quotaScopes(q *corev1.ResourceQuota) []corev1.ScopedResourceSelectorRequirement {
	var out []corev1.ScopedResourceSelectorRequirement
	for _, sc := range q.Spec.Scopes {
		out = append(out, corev1.ScopedResourceSelectorRequirement{ScopeName: sc, Operator: corev1.ScopeSelectorOpExists})
	}
	if q.Spec.ScopeSelector != nil {
		out = append(out, q.Spec.ScopeSelector.MatchExpressions...)
	}
	return out
}

// quotaCovers reports whether quota q applies to obj: a quota without
// scopes covers every object, a scoped one only pods matching every scope.
func quotaCovers(q *corev1.ResourceQuota, obj runtime.Object) bool {
	scopes := quotaScopes(q)
	if len(scopes) == 0 {
		return true
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	for _, sc := range scopes {
		if !podInScope(pod, sc) {
			return false
		}
	}
	return true
}

func podInScope(p *corev1.Pod, sc corev1.ScopedResourceSelectorRequirement) bool {
	switch sc.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		return p.Spec.ActiveDeadlineSeconds != nil && *p.Spec.ActiveDeadlineSeconds >= 0
	case corev1.ResourceQuotaScopeNotTerminating:
		return p.Spec.ActiveDeadlineSeconds == nil || *p.Spec.ActiveDeadlineSeconds < 0
	case corev1.ResourceQuotaScopeBestEffort:
		return bestEffort(p)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !bestEffort(p)
	case corev1.ResourceQuotaScopePriorityClass:
		return selects(sc, p.Spec.PriorityClassName)
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return crossNamespaceAffinity(p)
	}
	return false
}

// selects applies a scope selector requirement to a value ("" = unset).
func selects(sc corev1.ScopedResourceSelectorRequirement, v string) bool {
	switch sc.Operator {
	case corev1.ScopeSelectorOpExists:
		return v != ""
	case corev1.ScopeSelectorOpDoesNotExist:
		return v == ""
	case corev1.ScopeSelectorOpIn:
		return v != "" && slices.Contains(sc.Values, v)
	case corev1.ScopeSelectorOpNotIn:
		return v == "" || !slices.Contains(sc.Values, v)
	}
	return false
}

func crossNamespaceAffinity(p *corev1.Pod) bool {
	a := p.Spec.Affinity
	if a == nil {
		return false
	}
	var terms []corev1.PodAffinityTerm
	if a.PodAffinity != nil {
		terms = append(terms, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	if a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	for _, t := range terms {
		if len(t.Namespaces) > 0 || t.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// bestEffort reports whether a pod is of the BestEffort QoS class: no
// container requests or limits cpu or memory.
func bestEffort(p *corev1.Pod) bool {
	for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
		for _, l := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			for _, k := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := l[k]; ok && !q.IsZero() {
					return false
				}
			}
		}
	}
	return true
}

// explicitCompute are the compute resources that, when a quota limits
// them, every container of a pod must request (or limit) explicitly, as
// Kubernetes has required since before QoS classes.
var explicitCompute = []corev1.ResourceName{
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceRequestsCPU,
	corev1.ResourceRequestsMemory, corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory,
}

// podConstraints refuses a pod that a quota limiting names covers when
// one of its containers leaves a limited compute resource unset, worded
// as Kubernetes words it: "must specify cpu for: a,b; memory for: a".
func podConstraints(p *corev1.Pod, limited []corev1.ResourceName) error {
	missing := map[corev1.ResourceName][]string{}
	for _, c := range append(slices.Clone(p.Spec.Containers), p.Spec.InitContainers...) {
		has := func(l corev1.ResourceList, k corev1.ResourceName) bool { _, ok := l[k]; return ok }
		for _, name := range limited {
			if !slices.Contains(explicitCompute, name) {
				continue
			}
			var ok bool
			switch name {
			case corev1.ResourceCPU, corev1.ResourceRequestsCPU:
				ok = has(c.Resources.Requests, corev1.ResourceCPU)
			case corev1.ResourceMemory, corev1.ResourceRequestsMemory:
				ok = has(c.Resources.Requests, corev1.ResourceMemory)
			case corev1.ResourceLimitsCPU:
				ok = has(c.Resources.Limits, corev1.ResourceCPU)
			case corev1.ResourceLimitsMemory:
				ok = has(c.Resources.Limits, corev1.ResourceMemory)
			}
			if !ok && !slices.Contains(missing[name], c.Name) {
				missing[name] = append(missing[name], c.Name)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, 0, len(missing))
	for k := range missing {
		names = append(names, string(k))
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		cs := missing[corev1.ResourceName(n)]
		slices.Sort(cs)
		parts[i] = n + " for: " + strings.Join(cs, ",")
	}
	return fmt.Errorf("must specify %s", strings.Join(parts, "; "))
}
