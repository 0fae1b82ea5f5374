package pods

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

func mode(m int32) *int32 { return &m }

// payloadStrings shows a payload as "path=content (mode)", sorted.
func payloadStrings(p map[string]volumeFile) map[string]string {
	out := map[string]string{}
	for k, f := range p {
		out[k] = string(f.data) + " (" + f.mode.String() + ")"
	}
	return out
}

func cmVolume(name, cm string, items ...corev1.KeyToPath) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Items: items}}}
}

func TestVolumePayload(t *testing.T) {
	m := testManager(t, Config{Allocatable: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}})
	objs := testObjects()
	objs.ConfigMaps[types.NamespacedName{Namespace: "ns", Name: "cfg"}].BinaryData = map[string][]byte{"blob": {0, 1}}
	pod := newPod("p", "")
	pod.Annotations = map[string]string{"b": "2", "a": "1"}
	pod.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
	withMode := cmVolume("v", "cfg", corev1.KeyToPath{Key: "mode", Path: "conf/mode", Mode: mode(0o600)})
	withMode.ConfigMap.DefaultMode = mode(0o400)
	optionalKey := cmVolume("v", "cfg", corev1.KeyToPath{Key: "nope", Path: "x"}, corev1.KeyToPath{Key: "LEVEL", Path: "level"})
	optionalKey.ConfigMap.Optional = ptr(true)
	optionalCM := cmVolume("v", "absent")
	optionalCM.ConfigMap.Optional = ptr(true)
	tests := []struct {
		name string
		vol  corev1.Volume
		want map[string]string
		err  string
	}{
		{name: "configMap, every key", vol: cmVolume("v", "cfg"), want: map[string]string{
			"mode": "fast (-rw-r--r--)", "1bad": "x (-rw-r--r--)", "LEVEL": "3 (-rw-r--r--)", "blob": "\x00\x01 (-rw-r--r--)"}},
		{name: "configMap items and modes", vol: withMode, want: map[string]string{"conf/mode": "fast (-rw-------)"}},
		{name: "configMap optional key", vol: optionalKey, want: map[string]string{"level": "3 (-rw-r--r--)"}},
		{name: "configMap optional and missing", vol: optionalCM, want: map[string]string{}},
		{name: "configMap missing", vol: cmVolume("v", "absent"), err: `configmap "absent" not found`},
		{name: "configMap key missing", vol: cmVolume("v", "cfg", corev1.KeyToPath{Key: "nope", Path: "x"}),
			err: `configmap references non-existent config key: nope`},
		{name: "secret", vol: corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "creds", DefaultMode: mode(0o440)}}},
			want: map[string]string{"password": "s3cret (-r--r-----)", "user": "admin (-r--r-----)"}},
		{name: "secret missing", vol: corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "absent"}}}, err: `secret "absent" not found`},
		{name: "downwardAPI", vol: corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}, Mode: mode(0o600)},
				{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c0", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
				{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c0", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
			}}}},
			want: map[string]string{"name": "p (-rw-r--r--)", "annotations": "a=\"1\"\nb=\"2\" (-rw-------)", "cpu": "250 (-rw-r--r--)", "mem": "1024 (-rw-r--r--)"}},
		{name: "projected", vol: corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: mode(0o444),
			Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
					Items: []corev1.KeyToPath{{Key: "mode", Path: "mode"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"},
					Items: []corev1.KeyToPath{{Key: "user", Path: "creds/user", Mode: mode(0o400)}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}}},
			want: map[string]string{"mode": "fast (-r--r--r--)", "creds/user": "admin (-r--------)", "namespace": "ns (-r--r--r--)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.volumePayload(context.Background(), pod, &tc.vol, &objs)
			if tc.err != "" {
				if !errors.Is(err, errMissing) || err.Error() != tc.err {
					t.Errorf("volumePayload = %v, want %q wrapping errMissing", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, payloadStrings(got)); d != "" {
				t.Errorf("payload (-want +got):\n%s", d)
			}
		})
	}
}

// waitFor polls cond until it holds or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// TestVolumesLifecycle runs a pod with configMap, secret and downwardAPI
// volumes: their files appear before the containers start, the sandbox
// gets their directories and the containers read-only mounts, changes of
// the ConfigMap and of the pod's labels reach the files, the secret is on
// a tmpfs, and everything goes with the pod.
func TestVolumesLifecycle(t *testing.T) {
	pod := newPod("vols", "")
	pod.Spec.Volumes = []corev1.Volume{
		cmVolume("cfg", "cfg"),
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
	}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/cfg"}, {Name: "cfg", MountPath: "/etc/mode", SubPath: "mode"},
		{Name: "creds", MountPath: "/etc/creds"},
	}
	objs := testObjects()
	h := start(t, Config{}, pod)
	h.m.SetObjects(objs)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	dir := func(name string) string { return h.m.volumeDir(pod.UID, name) }

	if got := readFile(filepath.Join(dir("cfg"), "mode")); got != "fast" {
		t.Errorf("cfg/mode = %q, want fast", got)
	}
	if got := readFile(filepath.Join(dir("creds"), "password")); got != "s3cret" {
		t.Errorf("creds/password = %q, want s3cret", got)
	}
	if got := readFile(filepath.Join(dir("info"), "labels")); got != `app="vols"` {
		t.Errorf("info/labels = %q", got)
	}
	if mounted, err := mountinfo.Mounted(dir("creds")); err != nil || !mounted {
		t.Errorf("secret volume on a tmpfs: mounted = %v, %v", mounted, err)
	}
	if mounted, _ := mountinfo.Mounted(dir("cfg")); mounted {
		t.Error("configMap volume has a mount of its own; only secrets and projected volumes do")
	}
	wantVols := []runtime.Volume{{Name: "cfg", HostPath: dir("cfg")}, {Name: "creds", HostPath: dir("creds")}, {Name: "info", HostPath: dir("info")}}
	if d := cmp.Diff(wantVols, h.fake.PodSpec(string(pod.UID)).Volumes); d != "" {
		t.Errorf("sandbox volumes (-want +got):\n%s", d)
	}
	wantMounts := []runtime.Mount{{Volume: "cfg", Path: "/etc/cfg", ReadOnly: true},
		{Volume: "cfg", Path: "/etc/mode", SubPath: "mode", ReadOnly: true}, {Volume: "creds", Path: "/etc/creds", ReadOnly: true}}
	if d := cmp.Diff(wantMounts, h.fake.ContainerSpec(string(pod.UID), "c0").Mounts); d != "" {
		t.Errorf("mounts (-want +got):\n%s", d)
	}

	updated := testObjects()
	updated.ConfigMaps[types.NamespacedName{Namespace: "ns", Name: "cfg"}] = &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"mode": "slow"}}
	h.m.SetObjects(updated)
	waitFor(t, wait, "updated cfg/mode", func() bool { return readFile(filepath.Join(dir("cfg"), "mode")) == "slow" })
	if _, err := os.Lstat(filepath.Join(dir("cfg"), "LEVEL")); !os.IsNotExist(err) {
		t.Errorf("key removed from the ConfigMap still in the volume (%v)", err)
	}
	relabeled := bump(pod)
	relabeled.Labels["tier"] = "web"
	h.m.SetPods([]*corev1.Pod{relabeled})
	waitFor(t, wait, "updated labels", func() bool {
		return readFile(filepath.Join(dir("info"), "labels")) == "app=\"vols\"\ntier=\"web\""
	})

	h.m.SetPods(nil)
	podDir := filepath.Join(h.m.podVolumesDir(), string(pod.UID))
	waitFor(t, wait, "volumes removed", func() bool { _, err := os.Stat(podDir); return os.IsNotExist(err) })
	if mounted, _ := mountinfo.Mounted(dir("creds")); mounted {
		t.Error("the secret's tmpfs is still mounted after the pod went")
	}
}

// TestMemoryEmptyDir runs a pod with an emptyDir of medium Memory: it is a
// tmpfs of the size limit, mode 0777, gone with the pod.
func TestMemoryEmptyDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting a tmpfs needs root, as CI runs")
	}
	pod := newPod("mem", "")
	limit := resource.MustParse("8Mi")
	pod.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit}}}}
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	dir := h.m.volumeDir(pod.UID, "scratch")
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC || int64(st.Blocks)*st.Bsize != 8<<20 {
		t.Errorf("emptyDir medium Memory: fs type %#x, %d bytes; want tmpfs of 8 MiB", st.Type, int64(st.Blocks)*st.Bsize)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir mode = %v (%v), want 0777", fi.Mode().Perm(), err)
	}
	if got := h.fake.PodSpec(string(pod.UID)).Volumes; len(got) != 1 || got[0].HostPath != dir {
		t.Errorf("sandbox volumes = %+v, want scratch at %s", got, dir)
	}
	h.m.SetPods(nil)
	waitFor(t, wait, "tmpfs removed", func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
}

// TestVolumeMissingSource runs a pod whose configMap volume names a
// ConfigMap the node does not have: nothing starts, FailedMount is
// recorded once, and the pod starts when the ConfigMap arrives.
func TestVolumeMissingSource(t *testing.T) {
	pod := newPod("missing", "")
	pod.Spec.Volumes = []corev1.Volume{cmVolume("cfg", "cfg")}
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "ContainerCreating", func(st corev1.PodStatus) bool {
		return len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Waiting != nil &&
			st.ContainerStatuses[0].State.Waiting.Reason == reasonContainerCreating
	})
	waitFor(t, wait, "a FailedMount event", func() bool { return len(h.rep.eventsOf(pod.UID)) > 0 })
	// Let several syncs pass: the event is not repeated.
	time.Sleep(50 * time.Millisecond)
	want := []string{` Warning FailedMount: MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`}
	if d := cmp.Diff(want, h.rep.eventsOf(pod.UID)); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if h.fake.PodSpec(string(pod.UID)) != nil {
		t.Error("the sandbox was created before the volume was set up")
	}
	h.m.SetObjects(testObjects())
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
}
