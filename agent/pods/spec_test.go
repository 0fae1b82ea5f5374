package pods

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/minik-dev/minik/runtime"
)

func testManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	cfg.Runtime, cfg.Reporter = fakeRuntime(), newRecorder()
	cfg.NodeName, cfg.NodeIP = "node1", "192.0.2.10"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func resourceEnv(name, res, divisor string) corev1.EnvVar {
	sel := &corev1.ResourceFieldSelector{Resource: res}
	if divisor != "" {
		sel.Divisor = resource.MustParse(divisor)
	}
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: sel}}
}

func TestEnv(t *testing.T) {
	m := testManager(t, Config{})
	pod := newPod("envpod", "")
	pod.Spec.ServiceAccountName = "robot"
	pod.Annotations = map[string]string{"note": "hi"}
	c := &pod.Spec.Containers[0]
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	c.Env = []corev1.EnvVar{
		fieldEnv("NAME", "metadata.name"),
		fieldEnv("NS", "metadata.namespace"),
		fieldEnv("UID", "metadata.uid"),
		fieldEnv("POD_IP", "status.podIP"),
		fieldEnv("NODE", "spec.nodeName"),
		fieldEnv("HOST_IP", "status.hostIP"),
		fieldEnv("SA", "spec.serviceAccountName"),
		fieldEnv("APP", "metadata.labels['app']"),
		fieldEnv("NOTE", "metadata.annotations['note']"),
		resourceEnv("CPU_REQ", "requests.cpu", ""),
		resourceEnv("CPU_REQ_M", "requests.cpu", "1m"),
		resourceEnv("MEM_MI", "limits.memory", "1Mi"),
		{Name: "GREETING", Value: "$(NAME) in $(NS), $(UNKNOWN) $$(NAME)"},
		{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k", Optional: ptr(true)}}},
	}
	c.Args = []string{"$(POD_IP)"}
	spec, err := m.containerSpec(pod, c, "10.42.0.7", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.EnvVar{
		{Name: "NAME", Value: "envpod"}, {Name: "NS", Value: "ns"}, {Name: "UID", Value: string(pod.UID)},
		{Name: "POD_IP", Value: "10.42.0.7"}, {Name: "NODE", Value: "node1"}, {Name: "HOST_IP", Value: "192.0.2.10"},
		{Name: "SA", Value: "robot"}, {Name: "APP", Value: "envpod"}, {Name: "NOTE", Value: "hi"},
		{Name: "CPU_REQ", Value: "1"}, {Name: "CPU_REQ_M", Value: "250"}, {Name: "MEM_MI", Value: "64"},
		{Name: "GREETING", Value: "envpod in ns, $(UNKNOWN) $(NAME)"},
	}
	if d := cmp.Diff(want, spec.Env); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"10.42.0.7"}, spec.Args); d != "" {
		t.Errorf("args (-want +got):\n%s", d)
	}
	if spec.Resources != (runtime.Resources{CPURequestMilli: 250, MemoryLimitBytes: 64 << 20}) {
		t.Errorf("resources = %+v", spec.Resources)
	}
}

func TestEnvUnsupported(t *testing.T) {
	m := testManager(t, Config{})
	tests := []struct {
		name string
		env  corev1.EnvVar
	}{
		{"unknown field", fieldEnv("X", "spec.nope")},
		{"unknown resource", resourceEnv("X", "limits.gpu", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod("p", "")
			pod.Spec.Containers[0].Env = []corev1.EnvVar{tc.env}
			if _, err := m.containerSpec(pod, &pod.Spec.Containers[0], "", nil); !errors.Is(err, errUnsupported) {
				t.Errorf("containerSpec = %v, want errUnsupported", err)
			}
		})
	}
}

func TestPodSpecVolumes(t *testing.T) {
	data := t.TempDir()
	m := testManager(t, Config{DataDir: data})
	dir := t.TempDir()
	created := filepath.Join(dir, "made", "here")
	pod := newPod("vols", "")
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: created, Type: ptr(corev1.HostPathDirectoryOrCreate)}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
	}
	spec, err := m.podSpec(pod)
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.Volume{{Name: "scratch"}, {Name: "host", HostPath: created},
		{Name: "cfg", HostPath: filepath.Join(data, "pod-volumes", string(pod.UID), "cfg")}}
	if d := cmp.Diff(want, spec.Volumes); d != "" {
		t.Errorf("volumes (-want +got):\n%s", d)
	}
	if fi, err := os.Stat(created); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate did not create %s: %v", created, err)
	}
	if spec.Hostname != "vols" {
		t.Errorf("hostname = %q, want the pod name", spec.Hostname)
	}
	pod.Spec.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
		Path: filepath.Join(dir, "absent"), Type: ptr(corev1.HostPathDirectory)}}}}
	if _, err := m.podSpec(pod); err == nil {
		t.Error("podSpec accepted a missing hostPath of type Directory")
	}
}

// TestPodSpecHostEntries checks what a pod gives its /etc/hosts: its
// fully qualified name under a subdomain, and its host aliases.
func TestPodSpecHostEntries(t *testing.T) {
	m := testManager(t, Config{DataDir: t.TempDir()})
	pod := newPod("web-0", "")
	pod.Spec.Subdomain = "web"
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo.local", "bar.local"}}}
	spec, err := m.podSpec(pod)
	if err != nil {
		t.Fatal(err)
	}
	if want := "web-0.web." + pod.Namespace + ".svc.cluster.local"; spec.FQDN != want {
		t.Errorf("FQDN = %q, want %q", spec.FQDN, want)
	}
	want := []runtime.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo.local", "bar.local"}}}
	if d := cmp.Diff(want, spec.HostAliases); d != "" {
		t.Errorf("host aliases (-want +got):\n%s", d)
	}
}

func TestPodHostnameIsCut(t *testing.T) {
	long := "termination-message-container7662b828-c6af-4ddf-9bc7-27634cd39ccf"
	tests := []struct{ name, hostname, want string }{
		{"short", "", "short"},
		{long, "", long[:63]},
		{long[:62] + "-x", "", long[:62]},    // the cut ends in '-', which is dropped
		{long[:61] + ".-abc", "", long[:61]}, // so are trailing dots
		{long, "explicit", "explicit"},
	}
	for _, tc := range tests {
		pod := newPod(tc.name, "")
		pod.Spec.Hostname = tc.hostname
		if got := podHostname(pod); got != tc.want {
			t.Errorf("podHostname(name %q, hostname %q) = %q, want %q", tc.name, tc.hostname, got, tc.want)
		}
	}
}
