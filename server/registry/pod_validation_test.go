package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// validPod is a defaulted pod that passes validation.
func validPod() *corev1.Pod {
	pod := testPod()
	podResource.PrepareForCreate(pod)
	return pod
}

func addContainer(pod *corev1.Pod, name string) *corev1.Container {
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
		Name: name, Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	})
	return &pod.Spec.Containers[len(pod.Spec.Containers)-1]
}

func addVolume(pod *corev1.Pod, name string) *corev1.Volume {
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
		Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
	})
	return &pod.Spec.Volumes[len(pod.Spec.Volumes)-1]
}

func c0(pod *corev1.Pod) *corev1.Container { return &pod.Spec.Containers[0] }

func TestValidatePodMetadata(t *testing.T) {
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{name: "valid"},
		{"namespace required", func(p *corev1.Pod) { p.Namespace = "" }, []string{errKey(required, "metadata.namespace")}},
		{"name a DNS subdomain", func(p *corev1.Pod) { p.Name = "Web_1" }, []string{errKey(invalid, "metadata.name")}},
		{"dotted name allowed", func(p *corev1.Pod) { p.Name = "web.v1" }, nil},
		{"label key", func(p *corev1.Pod) { p.Labels = map[string]string{"a b": "x"} }, []string{errKey(invalid, "metadata.labels")}},
		{"label value", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "-x"} }, []string{errKey(invalid, "metadata.labels")}},
		{"annotation key", func(p *corev1.Pod) { p.Annotations = map[string]string{"a b": "x"} }, []string{errKey(invalid, "metadata.annotations")}},
	})
}

func TestValidatePodContainers(t *testing.T) {
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"at least one container", func(p *corev1.Pod) { p.Spec.Containers = nil }, []string{errKey(required, "spec.containers")}},
		{"name required", func(p *corev1.Pod) { c0(p).Name = "" }, []string{errKey(required, "spec.containers[0].name")}},
		{"name a DNS label", func(p *corev1.Pod) { c0(p).Name = "web.v1" }, []string{errKey(invalid, "spec.containers[0].name")}},
		{"names unique", func(p *corev1.Pod) { addContainer(p, "nginx") }, []string{errKey(duplicate, "spec.containers[1].name")}},
		{"names unique across init containers", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{*c0(p)}
			p.Spec.InitContainers[0].Ports = nil
		}, []string{errKey(duplicate, "spec.containers[0].name")}},
		{"image required", func(p *corev1.Pod) { c0(p).Image = "" }, []string{errKey(required, "spec.containers[0].image")}},
		{"image without spaces", func(p *corev1.Pod) { c0(p).Image = " nginx" }, []string{errKey(invalid, "spec.containers[0].image")}},
		{"init image required", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{*c0(p)}
			p.Spec.InitContainers[0].Name, p.Spec.InitContainers[0].Image = "setup", ""
		}, []string{errKey(required, "spec.initContainers[0].image")}},
		{"init restartPolicy only Always", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{*c0(p)}
			p.Spec.InitContainers[0].Name = "setup"
			p.Spec.InitContainers[0].Ports = nil
			p.Spec.InitContainers[0].RestartPolicy = ptrTo(corev1.ContainerRestartPolicyNever)
		}, []string{errKey(notSupported, "spec.initContainers[0].restartPolicy")}},
		{"imagePullPolicy", func(p *corev1.Pod) { c0(p).ImagePullPolicy = "Sometimes" }, []string{errKey(notSupported, "spec.containers[0].imagePullPolicy")}},
		{"terminationMessagePolicy", func(p *corev1.Pod) { c0(p).TerminationMessagePolicy = "Stdout" }, []string{errKey(notSupported, "spec.containers[0].terminationMessagePolicy")}},
	})
}

func TestValidatePodPorts(t *testing.T) {
	port := func(p *corev1.Pod) *corev1.ContainerPort { return &c0(p).Ports[0] }
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"containerPort required", func(p *corev1.Pod) { port(p).ContainerPort = 0 }, []string{errKey(required, "spec.containers[0].ports[0].containerPort")}},
		{"containerPort in range", func(p *corev1.Pod) { port(p).ContainerPort = 65536 }, []string{errKey(invalid, "spec.containers[0].ports[0].containerPort")}},
		{"hostPort in range", func(p *corev1.Pod) { port(p).HostPort = -1 }, []string{errKey(invalid, "spec.containers[0].ports[0].hostPort")}},
		{"hostPort allowed", func(p *corev1.Pod) { port(p).HostPort = 8080 }, nil},
		{"hostIP an IP", func(p *corev1.Pod) { port(p).HostIP = "localhost" }, []string{errKey(invalid, "spec.containers[0].ports[0].hostIP")}},
		{"protocol required", func(p *corev1.Pod) { port(p).Protocol = "" }, []string{errKey(required, "spec.containers[0].ports[0].protocol")}},
		{"protocol supported", func(p *corev1.Pod) { port(p).Protocol = "HTTP" }, []string{errKey(notSupported, "spec.containers[0].ports[0].protocol")}},
		{"SCTP allowed", func(p *corev1.Pod) { port(p).Protocol = corev1.ProtocolSCTP }, nil},
		{"name at most 15 characters", func(p *corev1.Pod) { port(p).Name = "http-alternative" }, []string{errKey(invalid, "spec.containers[0].ports[0].name")}},
		{"name an IANA service name", func(p *corev1.Pod) { port(p).Name = "http_alt" }, []string{errKey(invalid, "spec.containers[0].ports[0].name")}},
		{"names unique", func(p *corev1.Pod) {
			c0(p).Ports = append(c0(p).Ports, corev1.ContainerPort{Name: "http", ContainerPort: 81, Protocol: corev1.ProtocolTCP})
		}, []string{errKey(duplicate, "spec.containers[0].ports[1].name")}},
		{"host ports unique in the pod", func(p *corev1.Pod) {
			port(p).HostPort = 8080
			c := addContainer(p, "sidecar")
			c.Ports = []corev1.ContainerPort{{ContainerPort: 81, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
		}, []string{errKey(duplicate, "spec.containers[1].ports[0].hostPort")}},
	})
}

func TestValidatePodEnv(t *testing.T) {
	env := func(p *corev1.Pod, e corev1.EnvVar) { c0(p).Env = []corev1.EnvVar{e} }
	fieldRef := &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}
	secretRef := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid", func(p *corev1.Pod) { env(p, corev1.EnvVar{Name: "MODE", Value: "fast"}) }, nil},
		{"name required", func(p *corev1.Pod) { env(p, corev1.EnvVar{Value: "x"}) }, []string{errKey(required, "spec.containers[0].env[0].name")}},
		{"name without =", func(p *corev1.Pod) { env(p, corev1.EnvVar{Name: "A=B"}) }, []string{errKey(invalid, "spec.containers[0].env[0].name")}},
		{"valueFrom needs a source", func(p *corev1.Pod) { env(p, corev1.EnvVar{Name: "A", ValueFrom: &corev1.EnvVarSource{}}) },
			[]string{errKey(invalid, "spec.containers[0].env[0].valueFrom")}},
		{"valueFrom one source", func(p *corev1.Pod) {
			env(p, corev1.EnvVar{Name: "A", ValueFrom: &corev1.EnvVarSource{FieldRef: fieldRef, SecretKeyRef: secretRef}})
		}, []string{errKey(invalid, "spec.containers[0].env[0].valueFrom")}},
		{"value or valueFrom", func(p *corev1.Pod) {
			env(p, corev1.EnvVar{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{FieldRef: fieldRef}})
		}, []string{errKey(invalid, "spec.containers[0].env[0].valueFrom")}},
	})
}

func TestValidatePodVolumes(t *testing.T) {
	mount := func(p *corev1.Pod, m ...corev1.VolumeMount) { c0(p).VolumeMounts = m }
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid", func(p *corev1.Pod) {
			addVolume(p, "data")
			mount(p, corev1.VolumeMount{Name: "data", MountPath: "/data", SubPath: "a/b"})
		}, nil},
		{"name required", func(p *corev1.Pod) { addVolume(p, "") }, []string{errKey(required, "spec.volumes[0].name")}},
		{"name a DNS label", func(p *corev1.Pod) { addVolume(p, "Data") }, []string{errKey(invalid, "spec.volumes[0].name")}},
		{"names unique", func(p *corev1.Pod) { addVolume(p, "data"); addVolume(p, "data") }, []string{errKey(duplicate, "spec.volumes[1].name")}},
		{"source required", func(p *corev1.Pod) { addVolume(p, "data").EmptyDir = nil }, []string{errKey(required, "spec.volumes[0]")}},
		{"one source", func(p *corev1.Pod) {
			addVolume(p, "data").HostPath = &corev1.HostPathVolumeSource{Path: "/srv"}
		}, []string{errKey(forbidden, "spec.volumes[0].emptyDir")}},
		{"hostPath path", func(p *corev1.Pod) {
			v := addVolume(p, "data")
			v.EmptyDir, v.HostPath = nil, &corev1.HostPathVolumeSource{}
		}, []string{errKey(required, "spec.volumes[0].hostPath.path")}},
		{"secret name", func(p *corev1.Pod) {
			v := addVolume(p, "data")
			v.EmptyDir, v.Secret = nil, &corev1.SecretVolumeSource{}
		}, []string{errKey(required, "spec.volumes[0].secret.secretName")}},
		{"image volume", func(p *corev1.Pod) {
			v := addVolume(p, "data")
			v.EmptyDir, v.Image = nil, &corev1.ImageVolumeSource{Reference: "busybox:1.36", PullPolicy: corev1.PullIfNotPresent}
		}, nil},
		{"image reference", func(p *corev1.Pod) {
			v := addVolume(p, "data")
			v.EmptyDir, v.Image = nil, &corev1.ImageVolumeSource{PullPolicy: corev1.PullAlways}
		}, []string{errKey(required, "spec.volumes[0].image.reference")}},
		{"image pull policy", func(p *corev1.Pod) {
			v := addVolume(p, "data")
			v.EmptyDir, v.Image = nil, &corev1.ImageVolumeSource{Reference: "busybox:1.36", PullPolicy: "Sometimes"}
		}, []string{errKey(notSupported, "spec.volumes[0].image.pullPolicy")}},
		{"mount names a volume", func(p *corev1.Pod) { mount(p, corev1.VolumeMount{Name: "data", MountPath: "/data"}) },
			[]string{errKey(notFound, "spec.containers[0].volumeMounts[0].name")}},
		{"mount name required", func(p *corev1.Pod) { mount(p, corev1.VolumeMount{MountPath: "/data"}) },
			[]string{errKey(required, "spec.containers[0].volumeMounts[0].name")}},
		{"mountPath required", func(p *corev1.Pod) { addVolume(p, "data"); mount(p, corev1.VolumeMount{Name: "data"}) },
			[]string{errKey(required, "spec.containers[0].volumeMounts[0].mountPath")}},
		{"mountPath unique", func(p *corev1.Pod) {
			addVolume(p, "data")
			mount(p, corev1.VolumeMount{Name: "data", MountPath: "/d"}, corev1.VolumeMount{Name: "data", MountPath: "/d"})
		}, []string{errKey(invalid, "spec.containers[0].volumeMounts[1].mountPath")}},
		{"subPath relative", func(p *corev1.Pod) {
			addVolume(p, "data")
			mount(p, corev1.VolumeMount{Name: "data", MountPath: "/d", SubPath: "/etc"})
		}, []string{errKey(invalid, "spec.containers[0].volumeMounts[0].subPath")}},
		{"configMap name", func(p *corev1.Pod) {
			v := addVolume(p, "data")
			v.EmptyDir, v.ConfigMap = nil, &corev1.ConfigMapVolumeSource{}
		}, []string{errKey(required, "spec.volumes[0].configMap.name")}},
		{"claimName", func(p *corev1.Pod) {
			v := addVolume(p, "data")
			v.EmptyDir, v.PersistentVolumeClaim = nil, &corev1.PersistentVolumeClaimVolumeSource{}
		}, []string{errKey(required, "spec.volumes[0].persistentVolumeClaim.claimName")}},
		{"emptyDir sizeLimit not negative", func(p *corev1.Pod) {
			addVolume(p, "data").EmptyDir.SizeLimit = ptrTo(resource.MustParse("-1Gi"))
		}, []string{errKey(invalid, "spec.volumes[0].emptyDir.sizeLimit")}},
		{"subPath stays inside", func(p *corev1.Pod) {
			addVolume(p, "data")
			mount(p, corev1.VolumeMount{Name: "data", MountPath: "/d", SubPath: "a/../../etc"})
		}, []string{errKey(invalid, "spec.containers[0].volumeMounts[0].subPath")}},
	})
}

func TestValidatePodResources(t *testing.T) {
	q := resource.MustParse
	res := func(p *corev1.Pod, req, lim corev1.ResourceList) {
		c0(p).Resources = corev1.ResourceRequirements{Requests: req, Limits: lim}
	}
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid", func(p *corev1.Pod) {
			res(p, corev1.ResourceList{"cpu": q("100m")}, corev1.ResourceList{"cpu": q("1"), "example.com/gpu": q("1")})
		}, nil},
		{"request not negative", func(p *corev1.Pod) { res(p, corev1.ResourceList{"cpu": q("-1")}, nil) },
			[]string{errKey(invalid, "spec.containers[0].resources.requests[cpu]")}},
		{"limit not negative", func(p *corev1.Pod) { res(p, nil, corev1.ResourceList{"memory": q("-1Mi")}) },
			[]string{errKey(invalid, "spec.containers[0].resources.limits[memory]")}},
		{"request at most limit", func(p *corev1.Pod) {
			res(p, corev1.ResourceList{"memory": q("2Gi")}, corev1.ResourceList{"memory": q("1Gi")})
		}, []string{errKey(invalid, "spec.containers[0].resources.requests[memory]")}},
		{"standard resource names", func(p *corev1.Pod) { res(p, nil, corev1.ResourceList{"gpu": q("1")}) },
			[]string{errKey(invalid, "spec.containers[0].resources.limits[gpu]")}},
		{"pod-level resources", func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("2")}, Limits: corev1.ResourceList{"cpu": q("1")}}
		}, []string{errKey(invalid, "spec.resources.requests[cpu]")}},
	})
}

func TestValidatePodResizePolicy(t *testing.T) {
	policy := func(p *corev1.Pod, ps ...corev1.ContainerResizePolicy) { c0(p).ResizePolicy = ps }
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid", func(p *corev1.Pod) {
			policy(p, corev1.ContainerResizePolicy{ResourceName: "cpu", RestartPolicy: corev1.NotRequired},
				corev1.ContainerResizePolicy{ResourceName: "memory", RestartPolicy: corev1.RestartContainer})
		}, nil},
		{"cpu or memory", func(p *corev1.Pod) {
			policy(p, corev1.ContainerResizePolicy{ResourceName: "ephemeral-storage", RestartPolicy: corev1.NotRequired})
		}, []string{errKey(notSupported, "spec.containers[0].resizePolicy[0].resourceName")}},
		{"once each", func(p *corev1.Pod) {
			policy(p, corev1.ContainerResizePolicy{ResourceName: "cpu", RestartPolicy: corev1.NotRequired},
				corev1.ContainerResizePolicy{ResourceName: "cpu", RestartPolicy: corev1.RestartContainer})
		}, []string{errKey(duplicate, "spec.containers[0].resizePolicy[1].resourceName")}},
		{"known policy", func(p *corev1.Pod) {
			policy(p, corev1.ContainerResizePolicy{ResourceName: "cpu", RestartPolicy: "Sometimes"})
		}, []string{errKey(notSupported, "spec.containers[0].resizePolicy[0].restartPolicy")}},
		{"no restart in a pod that never restarts", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			policy(p, corev1.ContainerResizePolicy{ResourceName: "memory", RestartPolicy: corev1.RestartContainer})
		}, []string{errKey(invalid, "spec.containers[0].resizePolicy[0].restartPolicy")}},
	})
}

func TestValidatePodSpecFields(t *testing.T) {
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"restartPolicy required", func(p *corev1.Pod) { p.Spec.RestartPolicy = "" }, []string{errKey(required, "spec.restartPolicy")}},
		{"restartPolicy supported", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []string{errKey(notSupported, "spec.restartPolicy")}},
		{"dnsPolicy supported", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" }, []string{errKey(notSupported, "spec.dnsPolicy")}},
		{"dnsPolicy None needs dnsConfig", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, []string{errKey(required, "spec.dnsConfig")}},
		{"dnsPolicy None needs a nameserver", func(p *corev1.Pod) {
			p.Spec.DNSPolicy, p.Spec.DNSConfig = corev1.DNSNone, &corev1.PodDNSConfig{}
		}, []string{errKey(required, "spec.dnsConfig.nameservers")}},
		{"nameservers are IPs", func(p *corev1.Pod) { p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"dns"}} },
			[]string{errKey(invalid, "spec.dnsConfig.nameservers[0]")}},
		{"at most 3 nameservers", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"}}
		}, []string{errKey(tooMany, "spec.dnsConfig.nameservers")}},
		{"search domains", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"svc.cluster.local.", "bad_domain"}}
		},
			[]string{errKey(invalid, "spec.dnsConfig.searches[1]")}},
		{"subdomain a DNS label", func(p *corev1.Pod) { p.Spec.Subdomain = "a.b" }, []string{errKey(invalid, "spec.subdomain")}},
		{"schedulerName a DNS subdomain", func(p *corev1.Pod) { p.Spec.SchedulerName = "My Scheduler" }, []string{errKey(invalid, "spec.schedulerName")}},
		{"terminationGracePeriodSeconds not negative", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo[int64](-1) },
			[]string{errKey(invalid, "spec.terminationGracePeriodSeconds")}},
		{"activeDeadlineSeconds positive", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo[int64](0) },
			[]string{errKey(invalid, "spec.activeDeadlineSeconds")}},
		{"nodeSelector labels", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ss d"} },
			[]string{errKey(invalid, "spec.nodeSelector")}},
		{"nodeName a DNS subdomain", func(p *corev1.Pod) { p.Spec.NodeName = "Node_1" }, []string{errKey(invalid, "spec.nodeName")}},
		{"serviceAccountName a DNS subdomain", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "Bad Name" },
			[]string{errKey(invalid, "spec.serviceAccountName")}},
		{"hostname a DNS label", func(p *corev1.Pod) { p.Spec.Hostname = "a.b" }, []string{errKey(invalid, "spec.hostname")}},
	})
}

func TestValidatePodTolerations(t *testing.T) {
	// validPod already has the two default tolerations.
	tol := func(p *corev1.Pod, t corev1.Toleration) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid", func(p *corev1.Pod) {
			tol(p, corev1.Toleration{Key: "gpu", Operator: "Equal", Value: "yes", Effect: "NoSchedule"})
		}, nil},
		{"tolerate everything", func(p *corev1.Pod) { tol(p, corev1.Toleration{Operator: "Exists"}) }, nil},
		{"key qualified", func(p *corev1.Pod) { tol(p, corev1.Toleration{Key: "a b", Operator: "Exists"}) },
			[]string{errKey(invalid, "spec.tolerations[2].key")}},
		{"operator supported", func(p *corev1.Pod) { tol(p, corev1.Toleration{Key: "gpu", Operator: "In"}) },
			[]string{errKey(notSupported, "spec.tolerations[2].operator")}},
		{"empty key needs Exists", func(p *corev1.Pod) { tol(p, corev1.Toleration{Operator: "Equal"}) },
			[]string{errKey(invalid, "spec.tolerations[2].operator")}},
		{"Exists without value", func(p *corev1.Pod) { tol(p, corev1.Toleration{Key: "gpu", Operator: "Exists", Value: "yes"}) },
			[]string{errKey(invalid, "spec.tolerations[2].value")}},
		{"effect supported", func(p *corev1.Pod) { tol(p, corev1.Toleration{Key: "gpu", Operator: "Exists", Effect: "Never"}) },
			[]string{errKey(notSupported, "spec.tolerations[2].effect")}},
		{"tolerationSeconds only for NoExecute", func(p *corev1.Pod) {
			tol(p, corev1.Toleration{Key: "gpu", Operator: "Exists", Effect: "NoSchedule", TolerationSeconds: ptrTo[int64](5)})
		}, []string{errKey(invalid, "spec.tolerations[2].effect")}},
	})
}

func TestValidatePodProbes(t *testing.T) {
	http := &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http"), Scheme: "HTTP"}
	probe := func(p *corev1.Pod, h corev1.ProbeHandler) {
		c0(p).LivenessProbe = &corev1.Probe{ProbeHandler: h, TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	}
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid", func(p *corev1.Pod) { probe(p, corev1.ProbeHandler{HTTPGet: http}) }, nil},
		{"handler required", func(p *corev1.Pod) { probe(p, corev1.ProbeHandler{}) }, []string{errKey(required, "spec.containers[0].livenessProbe")}},
		{"one handler", func(p *corev1.Pod) {
			probe(p, corev1.ProbeHandler{HTTPGet: http, TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}})
		}, []string{errKey(forbidden, "spec.containers[0].livenessProbe.tcpSocket")}},
		{"port valid", func(p *corev1.Pod) {
			probe(p, corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(0)}})
		},
			[]string{errKey(invalid, "spec.containers[0].livenessProbe.tcpSocket.port")}},
		{"period positive", func(p *corev1.Pod) {
			probe(p, corev1.ProbeHandler{HTTPGet: http})
			c0(p).LivenessProbe.PeriodSeconds = -1
		}, []string{errKey(invalid, "spec.containers[0].livenessProbe.periodSeconds")}},
	})
}

func TestValidatePodSysctls(t *testing.T) {
	sysctls := func(names ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{}
			for _, n := range names {
				p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
			}
		}
	}
	hostNet := func(names ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			sysctls(names...)(p)
			p.Spec.HostNetwork, p.Spec.DNSPolicy = true, corev1.DNSClusterFirstWithHostNet
		}
	}
	const path = "spec.securityContext.sysctls"
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid names, dots or slashes", sysctls("kernel.shm_rmid_forced", "net/ipv4/ip_local_port_range", "safe-and-unsafe", "kernel.shmmax"), nil},
		{"invalid names", sysctls("foo-", "kernel.shmmax", "safe-and-unsafe", "bar.."),
			[]string{errKey(invalid, path+"[0].name"), errKey(invalid, path+"[3].name")}},
		{"upper case", sysctls("Kernel.shmmax"), []string{errKey(invalid, path+"[0].name")}},
		{"name required", sysctls(""), []string{errKey(required, path+"[0].name")}},
		{"each once", sysctls("kernel.sem", "kernel.sem"), []string{errKey(duplicate, path+"[1].name")}},
		{"net sysctl with host network", hostNet("net.ipv4.ping_group_range"), []string{errKey(invalid, path+"[0].name")}},
		{"ipc sysctl with host network", hostNet("kernel.shm_rmid_forced"), nil},
		{"ipc sysctl with host IPC", func(p *corev1.Pod) {
			sysctls("kernel.msgmax")(p)
			p.Spec.HostIPC = true
		}, []string{errKey(invalid, path+"[0].name")}},
	})
}
