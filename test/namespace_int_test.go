//go:build integration

package test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/runtime/runtimetest"
)

// inclusterRef is the image holding busybox and test/testdata/incluster.
const inclusterRef = "docker.io/minik/incluster:test"

// writeInclusterImage builds the in-cluster client statically and writes
// an image of busybox plus /incluster into dir.
func writeInclusterImage(t testing.TB, dir string) {
	writeProgramImage(t, dir, "incluster", inclusterRef)
}

// writeProgramImage builds the Go program in testdata/NAME statically and
// writes an image of busybox plus /NAME, called ref, into dir as
// NAME.tar.
func writeProgramImage(t testing.TB, dir, name, ref string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/%s: %v\n%s", name, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatalf("busybox image: %v", err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	// WriteOCIArchive names every archive alike: write it apart, then
	// move it beside busybox's under a name of its own.
	written, err := runtimetest.WriteOCIArchive(t.TempDir(), ref, img)
	if err != nil {
		t.Fatalf("writing image: %v", err)
	}
	if err := os.Rename(written, filepath.Join(dir, name+".tar")); err != nil {
		t.Fatal(err)
	}
}

// podLogs returns the whole log of a pod's only container.
func podLogs(cs *kubernetes.Clientset, ns, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	return string(out), err
}

// waitLog waits until the pod's log holds want.
func waitLog(t *testing.T, cs *kubernetes.Clientset, ns, name, want string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%q in the log of %s", want, name), func() error {
		out, err := podLogs(cs, ns, name)
		if err != nil {
			return err
		}
		if !strings.Contains(out, want) {
			return fmt.Errorf("log so far:\n%s", tail(out, 10))
		}
		return nil
	})
}

// TestIntegrationNamespaceData runs what a namespace must give its pods:
// a ConfigMap volume that follows updates without a restart, a Secret as
// an environment variable, a service account token that client-go's
// in-cluster configuration uses through the kubernetes Service, and a
// deletion that leaves nothing behind.
func TestIntegrationNamespaceData(t *testing.T) {
	s, ip := startClusterServer(t)
	a := startAgentWithImages(t, s, ip, 1, writeInclusterImage)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, a.name)
	ctx := context.Background()
	const ns = "data-e2e"
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	eventually(t, 30*time.Second, "default ServiceAccount", func() error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"},
			Data: map[string]string{"mode": "one"}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
			StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reader"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, readerPod(), metav1.CreateOptions{})
		return err
	})

	waitPodRunning(t, cs, ns, "reader")
	waitLog(t, cs, ns, "reader", "PASS=s3cret", 30*time.Second)
	waitLog(t, cs, ns, "reader", "MODE=one", 30*time.Second)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["mode"] = "two"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, cs, ns, "reader", "MODE=two", 60*time.Second)
	if p, err := cs.CoreV1().Pods(ns).Get(ctx, "reader", metav1.GetOptions{}); err != nil || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("reader restarted or unreadable: %v %+v", err, p.Status.ContainerStatuses)
	}

	checkInCluster(t, cs, ns)
	checkNamespaceGone(t, cs, ns)
}

// readerPod prints a Secret's value from its environment once and a
// ConfigMap's value from its volume every second. It ends on SIGTERM (a
// shell that is process 1 ignores it otherwise, and would hold the
// namespace's deletion for its whole grace period).
func readerPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Labels: map[string]string{"app": "reader"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", "trap 'exit 0' TERM; echo PASS=$PASS; while true; do echo MODE=$(cat /etc/cfg/mode); sleep 1; done"},
				Env: []corev1.EnvVar{{Name: "PASS", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}},
			}},
			Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}},
		},
	}
}

// checkInCluster runs the in-cluster client in ns: bound to the view
// ClusterRole there (a service account may do nothing until a binding
// says so), it must list the namespace's pods and be refused its Secrets.
func checkInCluster(t *testing.T, cs *kubernetes.Clientset, ns string) {
	t.Helper()
	mustCreate(t, func() error {
		_, err := cs.RbacV1().RoleBindings(ns).Create(context.Background(), &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "default-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: ns}},
		}, metav1.CreateOptions{})
		return err
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "incluster"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "main", Image: inclusterRef, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"/incluster"},
			}},
		},
	}
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
		return err
	})
	eventually(t, 90*time.Second, "in-cluster client done", func() error {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), "incluster", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	out, err := podLogs(cs, ns, "incluster")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pods in " + ns + ": ", "reader", "secrets forbidden: true"} {
		if !strings.Contains(out, want) {
			t.Fatalf("in-cluster client's log lacks %q:\n%s", want, out)
		}
	}
}

// checkNamespaceGone deletes ns and waits for it and its content to go.
func checkNamespaceGone(t *testing.T, cs *kubernetes.Clientset, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "namespace "+ns+" gone", func() error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
	counts := map[string]func() (int, error){
		"pods": func() (int, error) {
			l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"services": func() (int, error) {
			l, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"configmaps": func() (int, error) {
			l, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"secrets": func() (int, error) {
			l, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"serviceaccounts": func() (int, error) {
			l, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"endpoints": func() (int, error) {
			l, err := cs.CoreV1().Endpoints(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
	}
	for kind, count := range counts {
		if n, err := count(); err != nil || n != 0 {
			t.Errorf("%s left in deleted namespace %s: %d (err %v)", kind, ns, n, err)
		}
	}
}

// mustCreate fails the test if create fails.
func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}
