package pods

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/minik-dev/minik/runtime"
)

// errMissing marks a ConfigMap, Secret or key a pod needs that the node
// does not have: the container waits with reason
// CreateContainerConfigError (env), or the pod's volumes are not set up
// (volumes), until it arrives. Errors that match it are made by missingf,
// worded as the kubelet words them.
var errMissing = errors.New("pods: not found")

// missingError is an error worded as the kubelet's that matches
// errMissing.
type missingError struct{ msg string }

func (e *missingError) Error() string        { return e.msg }
func (e *missingError) Is(target error) bool { return target == errMissing }

func missingf(format string, args ...any) error {
	return &missingError{msg: fmt.Sprintf(format, args...)}
}

// EventInvalidEnvironmentVariableNames is the kubelet's event for envFrom
// keys skipped because they are not valid variable names.
const EventInvalidEnvironmentVariableNames = "InvalidEnvironmentVariableNames"

// Objects are the cluster objects besides pods that the node's pods read:
// the ConfigMaps and Secrets they reference, the Services whose
// variables their containers get, and every ClusterTrustBundle (by name),
// which projected volumes select from. The manager keeps the maps and
// objects it is given; they must not change afterwards.
type Objects struct {
	ConfigMaps          map[types.NamespacedName]*corev1.ConfigMap
	Secrets             map[types.NamespacedName]*corev1.Secret
	Services            []*corev1.Service
	ClusterTrustBundles map[string]*certificatesv1.ClusterTrustBundle
}

func (o *Objects) configMap(ns, name string) (*corev1.ConfigMap, error) {
	if cm := o.ConfigMaps[types.NamespacedName{Namespace: ns, Name: name}]; cm != nil {
		return cm, nil
	}
	return nil, missingf("configmap %q not found", name)
}

func (o *Objects) secret(ns, name string) (*corev1.Secret, error) {
	if s := o.Secrets[types.NamespacedName{Namespace: ns, Name: name}]; s != nil {
		return s, nil
	}
	return nil, missingf("secret %q not found", name)
}

// envBuilder collects a container's variables in order: a name set again
// keeps its place and takes the new value.
type envBuilder struct {
	order []string
	vals  map[string]string
}

func (b *envBuilder) set(name, value string) {
	if _, ok := b.vals[name]; !ok {
		b.order = append(b.order, name)
	}
	b.vals[name] = value
}

// env resolves a container's environment as the kubelet does: envFrom
// sources first, then env entries in order (values expanded against the
// variables before them and the service variables; valueFrom resolved),
// then the service variables not set otherwise. warn receives the events
// the kubelet records on the way.
func (m *Manager) env(pod *corev1.Pod, c *corev1.Container, podIP string, objs *Objects, warn func(reason, msg string)) ([]runtime.EnvVar, error) {
	b := &envBuilder{vals: map[string]string{}}
	for i := range c.EnvFrom {
		if err := envFrom(pod, &c.EnvFrom[i], objs, b, warn); err != nil {
			return nil, err
		}
	}
	svc := serviceEnv(pod, objs.Services)
	lookup := lookupIn(b.vals, svc)
	for i, e := range c.Env {
		v, ok, err := m.envValue(pod, c, podIP, e, objs, lookup)
		if errors.Is(err, errMissing) {
			// Worded as the kubelet's, which the waiting message shows.
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("env[%d] %q: %w", i, e.Name, err)
		}
		if ok {
			b.set(e.Name, v)
		}
	}
	names := make([]string, 0, len(svc))
	for k := range svc {
		if _, ok := b.vals[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		b.set(k, svc[k])
	}
	out := make([]runtime.EnvVar, len(b.order))
	for i, k := range b.order {
		out[i] = runtime.EnvVar{Name: k, Value: b.vals[k]}
	}
	return out, nil
}

// envFrom adds the keys of one envFrom source, skipping (with an event)
// those that are not valid variable names once prefixed.
func envFrom(pod *corev1.Pod, ef *corev1.EnvFromSource, objs *Objects, b *envBuilder, warn func(reason, msg string)) error {
	var kind, name string
	data := map[string]string{}
	switch {
	case ef.ConfigMapRef != nil:
		kind, name = "configMap", ef.ConfigMapRef.Name
		cm, err := objs.configMap(pod.Namespace, name)
		if err != nil {
			if isTrue(ef.ConfigMapRef.Optional) {
				return nil
			}
			return err
		}
		data = cm.Data
	case ef.SecretRef != nil:
		kind, name = "secret", ef.SecretRef.Name
		s, err := objs.secret(pod.Namespace, name)
		if err != nil {
			if isTrue(ef.SecretRef.Optional) {
				return nil
			}
			return err
		}
		for k, v := range s.Data {
			data[k] = string(v)
		}
	default:
		return nil
	}
	var invalid []string
	for _, k := range sortedKeys(data) {
		full := ef.Prefix + k
		if len(validation.IsRelaxedEnvVarName(full)) != 0 {
			invalid = append(invalid, full)
			continue
		}
		b.set(full, data[k])
	}
	if len(invalid) > 0 && warn != nil {
		warn(EventInvalidEnvironmentVariableNames, fmt.Sprintf("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
			strings.Join(invalid, ", "), kind, pod.Namespace, name))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func isTrue(b *bool) bool { return b != nil && *b }

// envValue resolves one env entry; ok is false for an optional reference
// that is missing, which sets nothing.
func (m *Manager) envValue(pod *corev1.Pod, c *corev1.Container, podIP string, e corev1.EnvVar, objs *Objects, lookup lookupFunc) (string, bool, error) {
	src := e.ValueFrom
	switch {
	case e.Value != "" || src == nil:
		return expand(e.Value, lookup), true, nil
	case src.FieldRef != nil:
		v, err := m.fieldRef(pod, podIP, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := resourceFieldRef(c, src.ResourceFieldRef, m.cfg.Allocatable)
		return v, err == nil, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := objs.configMap(pod.Namespace, ref.Name)
		if err != nil {
			return "", false, optionalMissing(ref.Optional, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			return "", false, optionalMissing(ref.Optional, missingf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name))
		}
		return v, true, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := objs.secret(pod.Namespace, ref.Name)
		if err != nil {
			return "", false, optionalMissing(ref.Optional, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return "", false, optionalMissing(ref.Optional, missingf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name))
		}
		return string(v), true, nil
	}
	return "", false, fmt.Errorf("valueFrom: %w", errUnsupported)
}

// optionalMissing is nil for an optional reference, else err.
func optionalMissing(optional *bool, err error) error {
	if isTrue(optional) {
		return nil
	}
	return err
}

// fieldRef resolves a downward API field path.
func (m *Manager) fieldRef(pod *corev1.Pod, podIP, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return m.cfg.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		// The node gives a pod one address, so the list is that address.
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return m.cfg.NodeIP, nil
	}
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	return "", fmt.Errorf("fieldRef %q: %w", path, errUnsupported)
}

// formatMap writes labels or annotations as the downward API does: one
// key="value" per line, sorted by key, the value Go-quoted.
func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		lines = append(lines, k+"="+strconv.Quote(m[k]))
	}
	return strings.Join(lines, "\n")
}

// subscript parses "prefix['key']".
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// resourceFieldRef resolves a container's requests and limits, divided by
// the divisor and rounded up as the kubelet does (250m with divisor 1 reads
// 1). An unset limit reads as the node's allocatable amount.
func resourceFieldRef(c *corev1.Container, ref *corev1.ResourceFieldSelector, alloc corev1.ResourceList) (string, error) {
	list, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (list != "requests" && list != "limits") {
		return "", fmt.Errorf("resourceFieldRef %q: %w", ref.Resource, errUnsupported)
	}
	rn := corev1.ResourceName(name)
	var q resource.Quantity
	if list == "requests" {
		q = c.Resources.Requests[rn]
	} else if l, ok := c.Resources.Limits[rn]; ok {
		q = l
	} else {
		q = alloc[rn]
	}
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	switch {
	case rn == corev1.ResourceCPU:
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(div.MilliValue()))), 10), nil
	case rn == corev1.ResourceMemory, rn == corev1.ResourceEphemeralStorage,
		strings.HasPrefix(name, corev1.ResourceHugePagesPrefix):
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(div.Value()))), 10), nil
	}
	return "", fmt.Errorf("resourceFieldRef %q: %w", ref.Resource, errUnsupported)
}

// expandAll expands command or args against the container's final
// environment.
func expandAll(ss []string, env []runtime.EnvVar) []string {
	if len(ss) == 0 {
		return nil
	}
	lookup := lookupIn(envMap(env))
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = expand(s, lookup)
	}
	return out
}

func envMap(env []runtime.EnvVar) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

// serviceEnv returns the variables the kubelet derives from Services: the
// "kubernetes" Service of the default namespace always, and with
// enableServiceLinks (the default) every Service of the pod's namespace
// that has a cluster IP.
func serviceEnv(pod *corev1.Pod, services []*corev1.Service) map[string]string {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	picked := map[string]*corev1.Service{}
	for _, s := range services {
		if !hasClusterIP(s) {
			continue
		}
		switch {
		case s.Namespace == corev1.NamespaceDefault && s.Name == "kubernetes":
			// A Service of that name in the pod's own namespace wins.
			if _, ok := picked[s.Name]; !ok {
				picked[s.Name] = s
			}
		case links && s.Namespace == pod.Namespace:
			picked[s.Name] = s
		}
	}
	out := map[string]string{}
	for _, s := range picked {
		addServiceVars(out, s)
	}
	return out
}

func hasClusterIP(s *corev1.Service) bool {
	ip := s.Spec.ClusterIP
	return ip != "" && ip != corev1.ClusterIPNone && len(s.Spec.Ports) > 0
}

// addServiceVars adds NAME_SERVICE_HOST, NAME_SERVICE_PORT[_PORTNAME] and
// the Docker link variables of s.
func addServiceVars(out map[string]string, s *corev1.Service) {
	prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
	ip := s.Spec.ClusterIP
	out[prefix+"_SERVICE_HOST"] = ip
	out[prefix+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
	for i, p := range s.Spec.Ports {
		port := strconv.Itoa(int(p.Port))
		if p.Name != "" {
			out[prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = port
		}
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			out[prefix+"_PORT"] = url
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		out[pp] = url
		out[pp+"_PROTO"] = strings.ToLower(proto)
		out[pp+"_PORT"] = port
		out[pp+"_ADDR"] = ip
	}
}
