package apiserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/minik-dev/minik/server/registry"
)

// limitRangerAnnotation records the defaults a LimitRange gave a pod.
const limitRangerAnnotation = "kubernetes.io/limit-ranger"

// limitRanges returns the LimitRanges of namespace ns.
func (s *Server) limitRanges(ctx context.Context, ns string) ([]*corev1.LimitRange, error) {
	res, ok := registry.Lookup("limitranges")
	if !ok || !s.policies.mayHave(res.Name, ns) {
		return nil, nil
	}
	kvs, _, err := s.store.List(ctx, storagePrefix(res, ns), 0)
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.LimitRange, 0, len(kvs))
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		out = append(out, obj.(*corev1.LimitRange))
	}
	return out, nil
}

// defaultPodLimits gives each container of a new pod the default requests
// and limits of the Container limits of lrs that it lacks, and records
// them in the pod's kubernetes.io/limit-ranger annotation.
func defaultPodLimits(pod *corev1.Pod, lrs []*corev1.LimitRange) {
	for _, lr := range lrs {
		var def corev1.ResourceRequirements
		for _, lim := range lr.Spec.Limits {
			if lim.Type == corev1.LimitTypeContainer {
				def.Requests = mergeLists(def.Requests, lim.DefaultRequest)
				def.Limits = mergeLists(def.Limits, lim.Default)
			}
		}
		var notes []string
		for i := range pod.Spec.Containers {
			notes = defaultContainer(&pod.Spec.Containers[i], def, "container", notes)
		}
		for i := range pod.Spec.InitContainers {
			notes = defaultContainer(&pod.Spec.InitContainers[i], def, "init container", notes)
		}
		if len(notes) > 0 {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[limitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
		}
	}
}

func mergeLists(dst, src corev1.ResourceList) corev1.ResourceList {
	if dst == nil {
		dst = corev1.ResourceList{}
	}
	for k, v := range src {
		dst[k] = v.DeepCopy()
	}
	return dst
}

// defaultContainer fills c's missing requests and limits from def and
// appends a note of what it set.
func defaultContainer(c *corev1.Container, def corev1.ResourceRequirements, what string, notes []string) []string {
	fill := func(dst *corev1.ResourceList, src corev1.ResourceList) []string {
		var set []string
		for k, v := range src {
			if _, ok := (*dst)[k]; ok {
				continue
			}
			if *dst == nil {
				*dst = corev1.ResourceList{}
			}
			(*dst)[k] = v.DeepCopy()
			set = append(set, string(k))
		}
		sort.Strings(set)
		return set
	}
	if set := fill(&c.Resources.Requests, def.Requests); len(set) > 0 {
		notes = append(notes, strings.Join(set, ", ")+" request for "+what+" "+c.Name)
	}
	if set := fill(&c.Resources.Limits, def.Limits); len(set) > 0 {
		notes = append(notes, strings.Join(set, ", ")+" limit for "+what+" "+c.Name)
	}
	return notes
}

// checkPodLimits enforces the min, max and maxLimitRequestRatio of the
// Container and Pod limits of lrs on a pod, with Kubernetes' LimitRanger
// messages. The error joins every violation of the first LimitRange
// violated.
func checkPodLimits(pod *corev1.Pod, lrs []*corev1.LimitRange) error {
	for _, lr := range lrs {
		var errs []error
		for _, lim := range lr.Spec.Limits {
			switch lim.Type {
			case corev1.LimitTypeContainer:
				for _, c := range append(append([]corev1.Container(nil), pod.Spec.Containers...), pod.Spec.InitContainers...) {
					errs = append(errs, checkLimitItem(lim, c.Resources.Requests, c.Resources.Limits)...)
				}
			case corev1.LimitTypePod:
				opts := resourcehelper.PodResourcesOptions{}
				errs = append(errs, checkLimitItem(lim, resourcehelper.PodRequests(pod, opts), resourcehelper.PodLimits(pod, opts))...)
			}
		}
		if len(errs) > 0 {
			return aggregate(errs)
		}
	}
	return nil
}

// aggregate joins errors as Kubernetes' aggregate does: one alone, else
// "[a, b]".
func aggregate(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New("[" + strings.Join(msgs, ", ") + "]")
}

func checkLimitItem(lim corev1.LimitRangeItem, req, limits corev1.ResourceList) []error {
	var errs []error
	t := string(lim.Type)
	for _, k := range sortedNames(lim.Min) {
		errs = appendErr(errs, minConstraint(t, k, lim.Min[k], req, limits))
	}
	for _, k := range sortedNames(lim.Max) {
		errs = appendErr(errs, maxConstraint(t, k, lim.Max[k], req, limits))
	}
	for _, k := range sortedNames(lim.MaxLimitRequestRatio) {
		errs = appendErr(errs, ratioConstraint(t, k, lim.MaxLimitRequestRatio[k], req, limits))
	}
	return errs
}

func appendErr(errs []error, err error) []error {
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}

func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

func minConstraint(t string, k corev1.ResourceName, min resource.Quantity, req, lim corev1.ResourceList) error {
	r, hasReq := req[k]
	l, hasLim := lim[k]
	switch {
	case !hasReq:
		return fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", k, t, min.String())
	case r.Cmp(min) < 0:
		return fmt.Errorf("minimum %s usage per %s is %s, but request is %s", k, t, min.String(), r.String())
	case hasLim && l.Cmp(min) < 0:
		return fmt.Errorf("minimum %s usage per %s is %s, but limit is %s", k, t, min.String(), l.String())
	}
	return nil
}

func maxConstraint(t string, k corev1.ResourceName, max resource.Quantity, req, lim corev1.ResourceList) error {
	r, hasReq := req[k]
	l, hasLim := lim[k]
	switch {
	case !hasLim:
		return fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", k, t, max.String())
	case l.Cmp(max) > 0:
		return fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", k, t, max.String(), l.String())
	case hasReq && r.Cmp(max) > 0:
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", k, t, max.String(), r.String())
	}
	return nil
}

func ratioConstraint(t string, k corev1.ResourceName, max resource.Quantity, req, lim corev1.ResourceList) error {
	r, hasReq := req[k]
	l, hasLim := lim[k]
	if !hasReq || r.IsZero() {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", k, t, max.String())
	}
	if !hasLim || l.IsZero() {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", k, t, max.String())
	}
	ratio := float64(l.MilliValue()) / float64(r.MilliValue())
	if ratio*1000 > float64(max.MilliValue()) {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", k, t, max.String(), ratio)
	}
	return nil
}
