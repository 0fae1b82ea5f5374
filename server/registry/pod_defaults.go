package registry

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults Kubernetes applies to pods and pod templates.
const (
	defaultGracePeriodSeconds = corev1.DefaultTerminationGracePeriodSeconds
	// defaultTolerationSeconds is how long a pod stays on a node that is
	// not ready or unreachable before it is evicted.
	defaultTolerationSeconds = 300
	defaultFileMode          = 0o644
)

// defaultPod applies the pod spec defaults plus the not-ready and
// unreachable tolerations that admission adds to pods (not templates).
// Priority comes from the API server's priority admission, which reads
// PriorityClasses.
func defaultPod(pod *corev1.Pod) {
	spec := &pod.Spec
	defaultPodSpec(spec)
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		if !toleratesNoExecute(spec.Tolerations, key) {
			spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
				Key:               key,
				Operator:          corev1.TolerationOpExists,
				Effect:            corev1.TaintEffectNoExecute,
				TolerationSeconds: ptrTo[int64](defaultTolerationSeconds),
			})
		}
	}
}

// toleratesNoExecute reports whether ts already tolerate the NoExecute
// taint key, so the default toleration is not needed.
func toleratesNoExecute(ts []corev1.Toleration, key string) bool {
	for _, t := range ts {
		if (t.Key == key || t.Key == "") && (t.Effect == "" || t.Effect == corev1.TaintEffectNoExecute) {
			return true
		}
	}
	return false
}

// defaultPodSpec fills the fields Kubernetes defaults in a pod spec, for
// pods and pod templates alike.
func defaultPodSpec(spec *corev1.PodSpec) {
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptrTo[int64](defaultGracePeriodSeconds)
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = ptrTo(true)
	}
	// serviceAccount is the deprecated spelling of serviceAccountName;
	// Kubernetes keeps the two equal.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	if spec.Resources != nil {
		defaultRequests(spec.Resources)
	}
	keepCanonical(spec.Overhead)
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i], spec.HostNetwork)
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i], spec.HostNetwork)
	}
	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i].VolumeSource)
	}
}

func defaultContainer(c *corev1.Container, hostNetwork bool) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		p := &c.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		// With the host's network the container port is the host port.
		if hostNetwork && p.HostPort == 0 {
			p.HostPort = p.ContainerPort
		}
	}
	for i := range c.Env {
		if src := c.Env[i].ValueFrom; src != nil && src.FieldRef != nil && src.FieldRef.APIVersion == "" {
			src.FieldRef.APIVersion = "v1"
		}
	}
	defaultRequests(&c.Resources)
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
}

// pullPolicy is Always for an image without a tag or tagged latest, and
// IfNotPresent otherwise (a pinned digest included).
func pullPolicy(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	last := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(last, ":")
	if i < 0 || last[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// defaultRequests copies each limit without a request into the requests.
func defaultRequests(r *corev1.ResourceRequirements) {
	for name, limit := range r.Limits {
		if _, ok := r.Requests[name]; ok {
			continue
		}
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[name] = limit.DeepCopy()
	}
	keepCanonical(r.Limits)
	keepCanonical(r.Requests)
}

// keepCanonical makes each quantity of l remember its canonical form,
// which every encoding of the pod (the stored form, protobuf and JSON for
// clients) would otherwise work out again; copies of the pod keep it.
func keepCanonical(l corev1.ResourceList) {
	for name, q := range l {
		_ = q.String()
		l[name] = q
	}
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = corev1.URISchemeHTTP
		}
	}
}

func defaultVolume(v *corev1.VolumeSource) {
	switch {
	case v.Secret != nil && v.Secret.DefaultMode == nil:
		v.Secret.DefaultMode = ptrTo[int32](defaultFileMode)
	case v.ConfigMap != nil && v.ConfigMap.DefaultMode == nil:
		v.ConfigMap.DefaultMode = ptrTo[int32](defaultFileMode)
	case v.DownwardAPI != nil && v.DownwardAPI.DefaultMode == nil:
		v.DownwardAPI.DefaultMode = ptrTo[int32](defaultFileMode)
	case v.Projected != nil && v.Projected.DefaultMode == nil:
		v.Projected.DefaultMode = ptrTo[int32](defaultFileMode)
	case v.HostPath != nil && v.HostPath.Type == nil:
		v.HostPath.Type = ptrTo(corev1.HostPathUnset)
	case v.Image != nil && v.Image.PullPolicy == "":
		v.Image.PullPolicy = pullPolicy(v.Image.Reference)
	}
}

// qosClass computes a pod's QoS class from its (defaulted) spec: cpu and
// memory limits equal to requests in every container is Guaranteed, no
// cpu or memory requests or limits at all is BestEffort, else Burstable.
// Pod-level resources, when set, decide alone.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	var rs []corev1.ResourceRequirements
	if spec.Resources != nil {
		rs = append(rs, *spec.Resources)
	} else {
		for _, c := range spec.InitContainers {
			rs = append(rs, c.Resources)
		}
		for _, c := range spec.Containers {
			rs = append(rs, c.Resources)
		}
	}
	limited, guaranteed := false, true
	for _, r := range rs {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := positive(r.Requests, name)
			lim, hasLim := positive(r.Limits, name)
			limited = limited || hasReq || hasLim
			if !hasLim || hasReq && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !limited:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// positive returns list[name] when it is set and above zero.
func positive(list corev1.ResourceList, name corev1.ResourceName) (q resource.Quantity, ok bool) {
	v, ok := list[name]
	if !ok || v.Sign() <= 0 {
		return v, false
	}
	return v, true
}
