package pods

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

func testObjects() Objects {
	nn := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	return Objects{
		ConfigMaps: map[types.NamespacedName]*corev1.ConfigMap{
			nn("ns", "cfg"):    {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"mode": "fast", "1bad": "x", "LEVEL": "3"}},
			nn("other", "cfg"): {ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "cfg"}, Data: map[string]string{"mode": "elsewhere"}},
		},
		Secrets: map[types.NamespacedName]*corev1.Secret{
			nn("ns", "creds"): {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret"), "user": []byte("admin")}},
		},
		Services: []*corev1.Service{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"}, Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.1",
				Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "redis-primary"}, Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.20",
				Ports: []corev1.ServicePort{{Port: 6379}, {Name: "metrics-port", Port: 9121, Protocol: corev1.ProtocolUDP}}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "headless"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
				Ports: []corev1.ServicePort{{Port: 80}}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.30",
				Ports: []corev1.ServicePort{{Port: 80}}}},
		},
	}
}

func cmKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func secretKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func TestEnvSources(t *testing.T) {
	m := testManager(t, Config{})
	m.SetObjects(testObjects())
	pod := newPod("p", "")
	pod.Spec.EnableServiceLinks = ptr(false)
	c := &pod.Spec.Containers[0]
	c.EnvFrom = []corev1.EnvFromSource{
		{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
		{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
	}
	c.Env = []corev1.EnvVar{
		{Name: "MODE", ValueFrom: cmKey("cfg", "mode", false)},
		{Name: "PASS", ValueFrom: secretKey("creds", "password", false)},
		{Name: "OPT_KEY", ValueFrom: secretKey("creds", "nope", true)},
		{Name: "OPT_OBJ", ValueFrom: cmKey("absent", "k", true)},
		{Name: "LEVEL", Value: "level $(LEVEL) for $(S_user) at $(KUBERNETES_SERVICE_HOST), $(REDIS_PRIMARY_SERVICE_HOST)"},
		{Name: "EMPTY", Value: ""},
	}
	c.Command = []string{"/bin/$(MODE)", "$$(PASS)"}
	spec, err := m.containerSpec(pod, c, "10.42.0.7", func(reason, msg string) {
		if reason != EventInvalidEnvironmentVariableNames {
			t.Errorf("event %s: %s", reason, msg)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.EnvVar{
		{Name: "CFG_1bad", Value: "x"}, {Name: "CFG_LEVEL", Value: "3"}, {Name: "CFG_mode", Value: "fast"},
		{Name: "1bad", Value: "x"},
		{Name: "LEVEL", Value: "level 3 for admin at 10.43.0.1, $(REDIS_PRIMARY_SERVICE_HOST)"}, {Name: "mode", Value: "fast"},
		{Name: "S_password", Value: "s3cret"}, {Name: "S_user", Value: "admin"},
		{Name: "MODE", Value: "fast"}, {Name: "PASS", Value: "s3cret"}, {Name: "EMPTY", Value: ""},
		{Name: "KUBERNETES_PORT", Value: "tcp://10.43.0.1:443"},
		{Name: "KUBERNETES_PORT_443_TCP", Value: "tcp://10.43.0.1:443"},
		{Name: "KUBERNETES_PORT_443_TCP_ADDR", Value: "10.43.0.1"},
		{Name: "KUBERNETES_PORT_443_TCP_PORT", Value: "443"},
		{Name: "KUBERNETES_PORT_443_TCP_PROTO", Value: "tcp"},
		{Name: "KUBERNETES_SERVICE_HOST", Value: "10.43.0.1"},
		{Name: "KUBERNETES_SERVICE_PORT", Value: "443"},
		{Name: "KUBERNETES_SERVICE_PORT_HTTPS", Value: "443"},
	}
	if d := cmp.Diff(want, spec.Env); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"/bin/fast", "$(PASS)"}, spec.Command); d != "" {
		t.Errorf("command (-want +got):\n%s", d)
	}
}

func TestEnvInvalidKeysEvent(t *testing.T) {
	m := testManager(t, Config{})
	m.SetObjects(testObjects())
	pod := newPod("p", "")
	c := &pod.Spec.Containers[0]
	// Names may hold any printable character but "=" (Kubernetes' relaxed
	// rule): a prefix with one makes every key invalid.
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "A=", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
	var got []string
	if _, err := m.containerSpec(pod, c, "", func(reason, msg string) { got = append(got, reason+": "+msg) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"InvalidEnvironmentVariableNames: Keys [A=1bad, A=LEVEL, A=mode] from the EnvFrom configMap ns/cfg were skipped since they are considered invalid environment variable names."}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

func TestServiceLinks(t *testing.T) {
	m := testManager(t, Config{})
	m.SetObjects(testObjects())
	pod := newPod("p", "")
	spec, err := m.containerSpec(pod, &pod.Spec.Containers[0], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := envMap(spec.Env)
	for k, v := range map[string]string{
		"REDIS_PRIMARY_SERVICE_HOST":              "10.43.0.20",
		"REDIS_PRIMARY_SERVICE_PORT":              "6379",
		"REDIS_PRIMARY_SERVICE_PORT_METRICS_PORT": "9121",
		"REDIS_PRIMARY_PORT":                      "tcp://10.43.0.20:6379",
		"REDIS_PRIMARY_PORT_6379_TCP":             "tcp://10.43.0.20:6379",
		"REDIS_PRIMARY_PORT_9121_UDP":             "udp://10.43.0.20:9121",
		"REDIS_PRIMARY_PORT_9121_UDP_PROTO":       "udp",
		"REDIS_PRIMARY_PORT_9121_UDP_PORT":        "9121",
		"REDIS_PRIMARY_PORT_9121_UDP_ADDR":        "10.43.0.20",
		"KUBERNETES_SERVICE_HOST":                 "10.43.0.1",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"HEADLESS_SERVICE_HOST", "WEB_SERVICE_HOST"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s set: headless Services and other namespaces' Services give no variables", k)
		}
	}
	// kubernetes: 8; redis-primary: 3 service, 1 first-port link, 4 per port.
	if len(got) != 8+3+1+2*4 {
		t.Errorf("%d variables, want 20: %v", len(got), got)
	}
}

func TestEnvMissing(t *testing.T) {
	m := testManager(t, Config{})
	m.SetObjects(testObjects())
	tests := []struct {
		name    string
		env     []corev1.EnvVar
		envFrom []corev1.EnvFromSource
		msg     string
	}{
		{name: "configmap", env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("absent", "k", false)}},
			msg: `configmap "absent" not found`},
		{name: "configmap key", env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("cfg", "nope", false)}},
			msg: `couldn't find key nope in ConfigMap ns/cfg`},
		{name: "secret", env: []corev1.EnvVar{{Name: "X", ValueFrom: secretKey("absent", "k", false)}},
			msg: `secret "absent" not found`},
		{name: "secret key", env: []corev1.EnvVar{{Name: "X", ValueFrom: secretKey("creds", "nope", false)}},
			msg: `couldn't find key nope in Secret ns/creds`},
		{name: "envFrom secret", envFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}},
			msg: `secret "absent" not found`},
		{name: "other namespace", env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("cfg", "mode", false)}},
			msg: `configmap "cfg" not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod("p", "")
			if tc.name == "other namespace" {
				pod.Namespace = "third"
			}
			c := &pod.Spec.Containers[0]
			c.Env, c.EnvFrom = tc.env, tc.envFrom
			_, err := m.containerSpec(pod, c, "", nil)
			if !errors.Is(err, errMissing) || err.Error() != tc.msg {
				t.Errorf("containerSpec = %v, want %q wrapping errMissing", err, tc.msg)
			}
		})
	}
}

func TestResourceFieldRefDefaults(t *testing.T) {
	m := testManager(t, Config{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}})
	pod := newPod("p", "")
	c := &pod.Spec.Containers[0]
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("1G")}
	c.Env = []corev1.EnvVar{
		resourceEnv("CPU_LIMIT", "limits.cpu", ""),
		resourceEnv("MEM_LIMIT_MI", "limits.memory", "1Mi"),
		resourceEnv("STORAGE_K", "limits.ephemeral-storage", "1k"),
		resourceEnv("CPU_REQ", "requests.cpu", "1m"),
		fieldEnv("LABELS", "metadata.labels"),
		fieldEnv("IPS", "status.podIPs"),
		fieldEnv("HOST_IPS", "status.hostIPs"),
	}
	pod.Labels = map[string]string{"b": `say "hi"`, "a": "1"}
	spec, err := m.containerSpec(pod, c, "10.42.0.9", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CPU_LIMIT": "2", "MEM_LIMIT_MI": "4096", "STORAGE_K": "1000000", "CPU_REQ": "0",
		"LABELS": "a=\"1\"\nb=\"say \\\"hi\\\"\"", "IPS": "10.42.0.9", "HOST_IPS": "192.0.2.10"}
	if d := cmp.Diff(want, envMap(spec.Env)); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
}

func TestSubPathExpr(t *testing.T) {
	m := testManager(t, Config{})
	tests := []struct {
		expr, want string
		ok         bool
	}{
		{"$(POD_NAME)/logs", "p/logs", true},
		{"$(EMPTY)", "", false},
		{"$(UNSET)", "", false},
		{"..$(POD_NAME)", "..p", true},
		{"../$(POD_NAME)", "", false},
		{"$(UP)/x", "", false},
		{"/$(POD_NAME)", "", false},
	}
	for _, tc := range tests {
		pod := newPod("p", "")
		c := &pod.Spec.Containers[0]
		c.Env = []corev1.EnvVar{fieldEnv("POD_NAME", "metadata.name"), {Name: "EMPTY"}, {Name: "UP", Value: ".."}}
		c.VolumeMounts = []corev1.VolumeMount{{Name: "v", MountPath: "/v", SubPathExpr: tc.expr}}
		spec, err := m.containerSpec(pod, c, "", nil)
		if !tc.ok {
			if !errors.Is(err, errUnsupported) {
				t.Errorf("subPathExpr %q: err = %v, want errUnsupported", tc.expr, err)
			}
			continue
		}
		if err != nil || spec.Mounts[0].SubPath != tc.want {
			t.Errorf("subPathExpr %q: %v, %v; want subPath %q", tc.expr, spec, err, tc.want)
		}
	}
}

// TestConfigErrorUntilObjectArrives runs a pod whose environment needs a
// ConfigMap the node does not have: the container waits in
// CreateContainerConfigError with one event, and starts once the ConfigMap
// arrives.
func TestConfigErrorUntilObjectArrives(t *testing.T) {
	pod := newPod("cfgwait", "")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", ValueFrom: cmKey("cfg", "mode", false)}}
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, 5*time.Second, "CreateContainerConfigError", func(st corev1.PodStatus) bool {
		return len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Waiting != nil &&
			st.ContainerStatuses[0].State.Waiting.Reason == reasonConfigError &&
			st.ContainerStatuses[0].State.Waiting.Message == `configmap "cfg" not found`
	})
	h.m.SetObjects(testObjects())
	h.rep.waitStatus(t, pod.UID, 5*time.Second, "a running container", func(st corev1.PodStatus) bool {
		return len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Running != nil
	})
	failed := 0
	for _, ev := range h.rep.eventsOf(pod.UID) {
		if strings.Contains(ev, "Failed: Error: ") {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d Failed events, want 1: %q", failed, h.rep.eventsOf(pod.UID))
	}
	env := h.fake.ContainerSpec(string(pod.UID), pod.Spec.Containers[0].Name).Env
	if envMap(env)["MODE"] != "fast" {
		t.Errorf("env = %v, want MODE=fast", env)
	}
}

func TestSetObjectsRefreshesOnConfigChanges(t *testing.T) {
	m := testManager(t, Config{})
	drain := func() bool {
		select {
		case <-m.objsChanged:
			return true
		default:
			return false
		}
	}
	objs := testObjects()
	m.SetObjects(objs)
	if !drain() {
		t.Error("first objects did not ask for a refresh")
	}
	services := objs
	services.Services = services.Services[:1]
	m.SetObjects(services)
	if drain() {
		t.Error("a change of Services alone asked workers to refresh volumes")
	}
	changed := objs
	changed.Secrets = map[types.NamespacedName]*corev1.Secret{}
	for k, v := range objs.Secrets {
		c := v.DeepCopy()
		c.Data["password"] = []byte("new")
		changed.Secrets[k] = c
	}
	m.SetObjects(changed)
	if !drain() {
		t.Error("a changed Secret did not ask for a refresh")
	}
}
