//go:build integration

package test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const imageVolumePod = `apiVersion: v1
kind: Pod
metadata: {name: imagevolume}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  volumes:
  - name: tools
    image: {reference: busybox, pullPolicy: IfNotPresent}
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    volumeMounts: [{name: tools, mountPath: /tools}]
  - name: second
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    volumeMounts: [{name: tools, mountPath: /opt/tools}]
`

// TestIntegrationImageVolume mounts an image's file system read-only into
// a pod's containers on real containerd, and removes its snapshot with the
// pod.
func TestIntegrationImageVolume(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	pods := cs.CoreV1().Pods("default")

	s.mustMinik(strings.Replace(imageVolumePod, "NODE", n1.name, 1), "apply", "-f", "-")
	t.Cleanup(func() { pods.Delete(context.Background(), "imagevolume", metav1.DeleteOptions{}) })
	waitPodRunning(t, cs, "default", "imagevolume")

	for c, dir := range map[string]string{"main": "/tools", "second": "/opt/tools"} {
		if out, code := s.minik("", "exec", "imagevolume", "-c", c, "--", dir+"/bin/busybox", "echo", "from-the-volume"); code != 0 || strings.TrimSpace(out) != "from-the-volume" {
			t.Errorf("%s: running the volume's busybox = exit %d, %q; want from-the-volume", c, code, out)
		}
		if out, code := s.minik("", "exec", "imagevolume", "-c", c, "--", "touch", dir+"/new"); code == 0 {
			t.Errorf("%s: touch in the image volume succeeded (%q); want a read-only file system", c, out)
		}
	}

	snapshots := func() string {
		out, err := exec.Command("ctr", "--address", filepath.Join(n1.dataDir, "containerd", "containerd.sock"),
			"--namespace", "minik-"+n1.name, "snapshots", "ls").CombinedOutput()
		if err != nil {
			t.Fatalf("ctr snapshots ls: %v: %s", err, out)
		}
		return string(out)
	}
	if out := snapshots(); !strings.Contains(out, "minik-imagevolume-") {
		t.Fatalf("no image volume snapshot while the pod runs:\n%s", out)
	}
	if err := pods.Delete(context.Background(), "imagevolume", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "pod gone", func() error {
		_, err := pods.Get(context.Background(), "imagevolume", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
	eventually(t, 30*time.Second, "image volume snapshot removed", func() error {
		if out := snapshots(); strings.Contains(out, "minik-imagevolume-") {
			return fmt.Errorf("left:\n%s", out)
		}
		return nil
	})
}
