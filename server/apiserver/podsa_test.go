package apiserver

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/minik-dev/minik/server/serviceaccount"
)

// newAccountsServer is a test server that issues service account tokens.
func newAccountsServer(t *testing.T) *testServer {
	t.Helper()
	ts := newTestServer(t)
	key, _ := serviceAccountKeys(t)
	is, err := serviceaccount.NewIssuer(key, "")
	if err != nil {
		t.Fatal(err)
	}
	ts.cfg.ServiceAccounts = is
	return ts
}

// createServiceAccount creates sa through the API.
func (ts *testServer) createServiceAccount(t *testing.T, sa *corev1.ServiceAccount) {
	t.Helper()
	if _, err := ts.client.CoreV1().ServiceAccounts(sa.Namespace).Create(testContext(t), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPodServiceAccountMountsCredentials(t *testing.T) {
	ts := newAccountsServer(t)
	ts.createServiceAccount(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}})
	pod := testPod("web", nil)
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36"}}
	own := corev1.VolumeMount{Name: "mine", MountPath: ServiceAccountMountPath}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "own", Image: "busybox:1.36", VolumeMounts: []corev1.VolumeMount{own}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}

	got, err := ts.client.CoreV1().Pods("default").Create(testContext(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Spec.ServiceAccountName != "default" || got.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("serviceAccountName, serviceAccount = %q, %q, want default twice", got.Spec.ServiceAccountName, got.Spec.DeprecatedServiceAccount)
	}
	if len(got.Spec.Volumes) != 2 {
		t.Fatalf("volumes = %+v, want mine and the credentials", got.Spec.Volumes)
	}
	v := got.Spec.Volumes[1]
	suffix, ok := strings.CutPrefix(v.Name, ServiceAccountVolumePrefix)
	if !ok || len(suffix) != 5 {
		t.Errorf("volume name = %q, want %sXXXXX", v.Name, ServiceAccountVolumePrefix)
	}
	if !reflect.DeepEqual(v.Projected, serviceAccountVolumeSource()) {
		t.Errorf("volume = %+v, want %+v", v.Projected, serviceAccountVolumeSource())
	}
	if m := *v.Projected.DefaultMode; m != 0o644 {
		t.Errorf("defaultMode = %o, want 644", m)
	}
	want := corev1.VolumeMount{Name: v.Name, ReadOnly: true, MountPath: ServiceAccountMountPath}
	for _, c := range []corev1.Container{got.Spec.InitContainers[0], got.Spec.Containers[0]} {
		if n := len(c.VolumeMounts); n != 1 || !reflect.DeepEqual(c.VolumeMounts[0], want) {
			t.Errorf("container %s mounts %+v, want %+v", c.Name, c.VolumeMounts, want)
		}
	}
	if ms := got.Spec.Containers[1].VolumeMounts; len(ms) != 1 || !reflect.DeepEqual(ms[0], own) {
		t.Errorf("container own mounts %+v, want only its own %+v", ms, own)
	}
}

func TestPodServiceAccountOptOut(t *testing.T) {
	ts := newAccountsServer(t)
	ts.createServiceAccount(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}})
	ts.createServiceAccount(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "quiet", Namespace: "default"},
		AutomountServiceAccountToken: ptr.To(false)})
	tests := []struct {
		name, sa string
		pod      *bool
		mounted  bool
	}{
		{name: "pod opts out", sa: "default", pod: ptr.To(false)},
		{name: "account opts out", sa: "quiet"},
		{name: "pod overrides account", sa: "quiet", pod: ptr.To(true), mounted: true},
		{name: "neither says", sa: "default", mounted: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("p"+string(rune('a'+i)), nil)
			pod.Spec.ServiceAccountName, pod.Spec.AutomountServiceAccountToken = tt.sa, tt.pod
			got, err := ts.client.CoreV1().Pods("default").Create(testContext(t), pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			mounted := len(got.Spec.Volumes) == 1 && len(got.Spec.Containers[0].VolumeMounts) == 1
			if mounted != tt.mounted || (!tt.mounted && len(got.Spec.Volumes)+len(got.Spec.Containers[0].VolumeMounts) != 0) {
				t.Errorf("volumes %+v, mounts %+v; want mounted = %v", got.Spec.Volumes, got.Spec.Containers[0].VolumeMounts, tt.mounted)
			}
		})
	}
}

func TestPodServiceAccountMissing(t *testing.T) {
	prev := defaultSALookups
	defaultSALookups = 2
	t.Cleanup(func() { defaultSALookups = prev })
	ts := newAccountsServer(t)
	pods := ts.client.CoreV1().Pods("default")
	for _, sa := range []string{"robot", ""} {
		pod := testPod("web", nil)
		pod.Spec.ServiceAccountName = sa
		_, err := pods.Create(testContext(t), pod, metav1.CreateOptions{})
		name := sa
		if name == "" {
			name = "default"
		}
		want := `pods "web" is forbidden: error looking up service account default/` + name + `: serviceaccount "` + name + `" not found`
		if !apierrors.IsForbidden(err) || err.Error() != want {
			t.Errorf("Create with account %q = %v, want 403 %q", sa, err, want)
		}
		if _, err := pods.Get(testContext(t), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Get after a refused create = %v, want NotFound", err)
		}
	}
}

func TestPodServiceAccountPullSecretsAndMirror(t *testing.T) {
	ts := newAccountsServer(t)
	ts.createServiceAccount(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}})
	pods := ts.client.CoreV1().Pods("default")
	got, err := pods.Create(testContext(t), testPod("web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if want := []corev1.LocalObjectReference{{Name: "regcred"}}; !reflect.DeepEqual(got.Spec.ImagePullSecrets, want) {
		t.Errorf("imagePullSecrets = %+v, want the account's %+v", got.Spec.ImagePullSecrets, want)
	}
	old := testPod("old", nil)
	old.Spec.DeprecatedServiceAccount = "robot"
	if _, err := pods.Create(testContext(t), old, metav1.CreateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `"robot" not found`) {
		t.Errorf("Create naming a missing account in serviceAccount = %v, want 403 for robot", err)
	}
	ts.createServiceAccount(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: "default"}})
	if got, err = pods.Create(testContext(t), old, metav1.CreateOptions{}); err != nil {
		t.Errorf("Create naming robot in serviceAccount = %v", err)
	} else if got.Spec.ServiceAccountName != "robot" {
		t.Errorf("serviceAccountName = %q, want robot from serviceAccount", got.Spec.ServiceAccountName)
	}
	mirror := testPod("static", nil)
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
	got, err = pods.Create(testContext(t), mirror, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create mirror pod: %v", err)
	}
	if got.Spec.ServiceAccountName != "" || len(got.Spec.Volumes) != 0 || len(got.Spec.ImagePullSecrets) != 0 {
		t.Errorf("mirror pod spec = %+v, want it left as it was", got.Spec)
	}
}

// A server that issues no tokens only gives the pod its account's name:
// nothing to check and no credentials to mount.
func TestPodServiceAccountWithoutIssuer(t *testing.T) {
	ts := newTestServer(t)
	got, err := ts.client.CoreV1().Pods("default").Create(testContext(t), testPod("web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Spec.ServiceAccountName != "default" || len(got.Spec.Volumes) != 0 {
		t.Errorf("serviceAccountName %q, volumes %+v; want default and none", got.Spec.ServiceAccountName, got.Spec.Volumes)
	}
}
