package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodDefaults(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "nginx", Image: "nginx",
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.9"},
	}
	podResource.PrepareForCreate(pod)
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 1},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "nginx", Image: "nginx",
				Ports:                    []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				ImagePullPolicy:          corev1.PullAlways,
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			DNSPolicy:                     corev1.DNSClusterFirst,
			TerminationGracePeriodSeconds: ptrTo[int64](30),
			SchedulerName:                 "default-scheduler",
			SecurityContext:               &corev1.PodSecurityContext{},
			EnableServiceLinks:            ptrTo(true),
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: ptrTo[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: ptrTo[int64](300)},
			},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort},
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("PrepareForCreate (-want +got):\n%s", diff)
	}
}

func TestPodDefaultsKeepSetValues(t *testing.T) {
	pod := testPod()
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.TerminationGracePeriodSeconds = ptrTo[int64](5)
	pod.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	pod.Spec.DeprecatedServiceAccount = "builder"
	pod.Spec.HostNetwork = true
	podResource.PrepareForCreate(pod)
	got := []interface{}{pod.Spec.RestartPolicy, *pod.Spec.TerminationGracePeriodSeconds, len(pod.Spec.Tolerations),
		pod.Spec.ServiceAccountName, pod.Spec.Containers[0].Ports[0].HostPort}
	want := []interface{}{corev1.RestartPolicyNever, int64(5), 1, "builder", int32(80)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted (restartPolicy, grace, #tolerations, serviceAccountName, hostPort) (-want +got):\n%s", diff)
	}
}

func TestPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"registry.local:5000/team/app", corev1.PullAlways},
		{"registry.local:5000/team/app:v2", corev1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
	}
	for _, tc := range tests {
		if got := pullPolicy(tc.image); got != tc.want {
			t.Errorf("pullPolicy(%q) = %q, want %q", tc.image, got, tc.want)
		}
	}
}

func TestDefaultRequestsFromLimits(t *testing.T) {
	pod := testPod()
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("1Gi")},
		Requests: corev1.ResourceList{"cpu": resource.MustParse("500m")},
	}
	podResource.PrepareForCreate(pod)
	want := corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("1Gi")}
	if diff := cmp.Diff(want, pod.Spec.Containers[0].Resources.Requests, quantityEqual); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if pod.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("qosClass = %q, want Burstable", pod.Status.QOSClass)
	}
}

func TestQOSClass(t *testing.T) {
	q := resource.MustParse
	both := corev1.ResourceList{"cpu": q("1"), "memory": q("1Gi")}
	tests := []struct {
		name string
		res  []corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{"nothing", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"only extended resources", []corev1.ResourceRequirements{{Limits: corev1.ResourceList{"example.com/gpu": q("1")}}}, corev1.PodQOSBestEffort},
		{"limits only", []corev1.ResourceRequirements{{Limits: both}}, corev1.PodQOSGuaranteed},
		{"requests equal limits", []corev1.ResourceRequirements{{Limits: both, Requests: both}}, corev1.PodQOSGuaranteed},
		{"request below limit", []corev1.ResourceRequirements{{Limits: both, Requests: corev1.ResourceList{"cpu": q("500m")}}}, corev1.PodQOSBurstable},
		{"cpu limit only", []corev1.ResourceRequirements{{Limits: corev1.ResourceList{"cpu": q("1")}}}, corev1.PodQOSBurstable},
		{"one container without", []corev1.ResourceRequirements{{Limits: both}, {}}, corev1.PodQOSBurstable},
	}
	// Init containers count like app containers.
	withInit := &corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "setup"}},
		Containers:     []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Limits: both}}},
	}
	if got := qosClass(withInit); got != corev1.PodQOSBurstable {
		t.Errorf("qosClass with an unlimited init container = %q, want Burstable", got)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &corev1.PodSpec{}
			for _, r := range tc.res {
				spec.Containers = append(spec.Containers, corev1.Container{Resources: r})
			}
			if got := qosClass(spec); got != tc.want {
				t.Errorf("qosClass = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestQOSClassPodLevel(t *testing.T) {
	q := resource.MustParse
	pod := testPod()
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": q("64Mi")}}}}
	pod.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1"), "memory": q("1Gi")}}
	podResource.PrepareForCreate(pod)
	if pod.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("qosClass with pod-level limits = %q, want Guaranteed", pod.Status.QOSClass)
	}
	wantInit := corev1.ResourceList{"memory": q("64Mi")}
	if diff := cmp.Diff(wantInit, pod.Spec.InitContainers[0].Resources.Requests, quantityEqual); diff != "" {
		t.Errorf("init container requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pod.Spec.Resources.Limits, pod.Spec.Resources.Requests, quantityEqual); diff != "" {
		t.Errorf("pod-level requests (-want +got):\n%s", diff)
	}
}

func TestPodPrepareForUpdate(t *testing.T) {
	old := stored(podResource, testPod())
	old.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.9", QOSClass: corev1.PodQOSBestEffort}

	same := old.DeepCopy()
	same.Status = corev1.PodStatus{Phase: corev1.PodFailed}
	podResource.PrepareForUpdate(same, old)
	if diff := cmp.Diff(old.Status, same.Status); diff != "" {
		t.Errorf("update changed status (-want +got):\n%s", diff)
	}
	if same.Generation != 1 {
		t.Errorf("generation after update without spec change = %d, want 1", same.Generation)
	}

	changed := old.DeepCopy()
	changed.Spec.Containers[0].Image = "nginx:1.28"
	podResource.PrepareForUpdate(changed, old)
	if changed.Generation != 2 {
		t.Errorf("generation after image change = %d, want 2", changed.Generation)
	}
}

func TestPodPrepareForStatusUpdate(t *testing.T) {
	old := stored(podResource, testPod())
	pod := old.DeepCopy()
	pod.Spec.Containers[0].Image = "evil:1"
	pod.OwnerReferences = []metav1.OwnerReference{{Name: "x"}}
	pod.Labels = map[string]string{"app": "web", "ready": "yes"}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.9"}
	podResource.PrepareForStatusUpdate(pod, old)

	want := old.DeepCopy()
	want.Labels = pod.Labels
	want.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.9", QOSClass: corev1.PodQOSBestEffort}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("PrepareForStatusUpdate (-want +got):\n%s", diff)
	}
}

func TestValidatePodUpdate(t *testing.T) {
	base := func() *corev1.Pod {
		p := testPod()
		p.Spec.ActiveDeadlineSeconds = ptrTo[int64](60)
		p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: "Equal", Value: "a100", Effect: "NoExecute", TolerationSeconds: ptrTo[int64](60)}}
		return stored(podResource, p)
	}
	runUpdate(t, podResource, false, base, []validationCase[*corev1.Pod]{
		{"image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"labels", func(p *corev1.Pod) { p.Labels["tier"] = "front" }, nil},
		{"new image still required", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			[]string{errKey(required, "spec.containers[0].image")}},
		{"other spec fields", func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"sh"} },
			[]string{errKey(forbidden, "spec")}},
		{"containers added", func(p *corev1.Pod) { addContainer(p, "sidecar") }, []string{errKey(forbidden, "spec")}},
		{"nodeName set by binding only", func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }, []string{errKey(forbidden, "spec")}},
		{"deadline shortened", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo[int64](30) }, nil},
		{"deadline lengthened", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo[int64](90) },
			[]string{errKey(invalid, "spec.activeDeadlineSeconds")}},
		{"deadline removed", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = nil },
			[]string{errKey(invalid, "spec.activeDeadlineSeconds")}},
		{"toleration added", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "gpu", Operator: "Exists"})
		}, nil},
		{"tolerationSeconds changed", func(p *corev1.Pod) { p.Spec.Tolerations[0].TolerationSeconds = ptrTo[int64](10) }, nil},
		{"toleration changed", func(p *corev1.Pod) { p.Spec.Tolerations[0].Value = "h100" }, []string{errKey(forbidden, "spec.tolerations")}},
		{"toleration removed", func(p *corev1.Pod) { p.Spec.Tolerations = p.Spec.Tolerations[1:] }, []string{errKey(forbidden, "spec.tolerations")}},
		{"name immutable", func(p *corev1.Pod) { p.Name = "other" }, []string{errKey(invalid, "metadata.name")}},
	})

	bound := func() *corev1.Pod {
		p := base()
		p.Spec.NodeName = "node-1"
		return p
	}
	runUpdate(t, podResource, false, bound, []validationCase[*corev1.Pod]{
		{"nodeName immutable", func(p *corev1.Pod) { p.Spec.NodeName = "node-2" }, []string{errKey(invalid, "spec.nodeName")}},
		{"nodeName not cleared", func(p *corev1.Pod) { p.Spec.NodeName = "" }, []string{errKey(invalid, "spec.nodeName")}},
	})
}

func TestValidatePodStatusUpdate(t *testing.T) {
	base := func() *corev1.Pod { return stored(podResource, testPod()) }
	runUpdate(t, podResource, true, base, []validationCase[*corev1.Pod]{
		{"running", func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.9", PodIPs: []corev1.PodIP{{IP: "10.42.0.9"}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "nginx", Ready: true}}}
		}, nil},
		{"spec change ignored", func(p *corev1.Pod) { p.Spec.Containers = nil }, nil},
		{"phase supported", func(p *corev1.Pod) { p.Status.Phase = "Sleeping" }, []string{errKey(notSupported, "status.phase")}},
		{"podIP an IP", func(p *corev1.Pod) { p.Status.PodIP = "10.42.0" }, []string{errKey(invalid, "status.podIP")}},
		{"podIPs are IPs", func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "x"}} }, []string{errKey(invalid, "status.podIPs[0].ip")}},
		{"hostIP an IP", func(p *corev1.Pod) { p.Status.HostIP = "node" }, []string{errKey(invalid, "status.hostIP")}},
		{"nominatedNodeName a DNS subdomain", func(p *corev1.Pod) { p.Status.NominatedNodeName = "Node_1" },
			[]string{errKey(invalid, "status.nominatedNodeName")}},
		{"restartCount not negative", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "nginx", RestartCount: -1}}
		}, []string{errKey(invalid, "status.containerStatuses[0].restartCount")}},
		{"init container statuses name init containers", func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "nginx"}}
		}, []string{errKey(notFound, "status.initContainerStatuses[0].name")}},
		{"container statuses name containers", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "redis"}}
		}, []string{errKey(notFound, "status.containerStatuses[0].name")}},
	})
	done := func() *corev1.Pod {
		p := base()
		p.Status.Phase = corev1.PodSucceeded
		return p
	}
	runUpdate(t, podResource, true, done, []validationCase[*corev1.Pod]{
		{"terminal phase stays", func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }, []string{errKey(forbidden, "status.phase")}},
	})
}

func TestPodFieldSet(t *testing.T) {
	pod := stored(podResource, testPod())
	pod.Spec.NodeName = "node-1"
	pod.Spec.ServiceAccountName = "builder"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.42.0.9"}}
	want := fields.Set{
		"metadata.name":            "web",
		"metadata.namespace":       "default",
		"spec.nodeName":            "node-1",
		"spec.restartPolicy":       "Always",
		"spec.schedulerName":       "default-scheduler",
		"spec.serviceAccountName":  "builder",
		"spec.hostNetwork":         "false",
		"status.phase":             "Pending",
		"status.podIP":             "10.42.0.9",
		"status.nominatedNodeName": "",
	}
	if diff := cmp.Diff(want, podResource.FieldSet(pod)); diff != "" {
		t.Errorf("FieldSet (-want +got):\n%s", diff)
	}
}

func TestPodDefaultsProbesAndVolumes(t *testing.T) {
	pod := testPod()
	c := &pod.Spec.Containers[0]
	c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, PeriodSeconds: 2}
	c.Env = []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptrTo[int32](0o400)}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}}},
	}
	podResource.PrepareForCreate(pod)

	wantLiveness := &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
	}
	if diff := cmp.Diff(wantLiveness, c.LivenessProbe); diff != "" {
		t.Errorf("liveness probe (-want +got):\n%s", diff)
	}
	got := []interface{}{
		c.ReadinessProbe.PeriodSeconds,
		c.Env[0].ValueFrom.FieldRef.APIVersion,
		*pod.Spec.Volumes[0].ConfigMap.DefaultMode,
		*pod.Spec.Volumes[1].Secret.DefaultMode,
		*pod.Spec.Volumes[2].HostPath.Type,
	}
	want := []interface{}{int32(2), "v1", int32(0o644), int32(0o400), corev1.HostPathUnset}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(readiness period, fieldRef apiVersion, configMap mode, secret mode, hostPath type) (-want +got):\n%s", diff)
	}
	if errs := podResource.ValidateCreate(pod); len(errs) > 0 {
		t.Errorf("defaulted pod invalid: %v", errs)
	}
}

// A new pod's quantities remember their canonical form, so that encoding
// the pod does not work it out each time, and copies keep it.
func TestPodQuantitiesKeepTheirCanonicalForm(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "nginx", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.5")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1024Ki")},
			}}},
			Overhead: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.25")},
		},
	}
	podResource.PrepareForCreate(pod)
	copied := pod.DeepCopy()
	for _, tc := range []struct {
		where string
		list  corev1.ResourceList
		name  corev1.ResourceName
		want  string
	}{
		{"requests", copied.Spec.Containers[0].Resources.Requests, corev1.ResourceCPU, "500m"},
		{"limits", copied.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory, "1Mi"},
		{"requests from limits", copied.Spec.Containers[0].Resources.Requests, corev1.ResourceMemory, "1Mi"},
		{"overhead", copied.Spec.Overhead, corev1.ResourceCPU, "250m"},
	} {
		q := tc.list[tc.name]
		// Working the form out allocates; a remembered one does not.
		// Each run asks a fresh copy, which String cannot have changed.
		if n := testing.AllocsPerRun(10, func() { fresh := q; _ = fresh.String() }); n != 0 {
			t.Errorf("%s %s: String allocates %v times, want 0 (the canonical form remembered)", tc.where, tc.name, n)
		}
		if got := q.String(); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.where, tc.name, got, tc.want)
		}
	}
}
