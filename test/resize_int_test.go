//go:build integration

package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const resizePod = `apiVersion: v1
kind: Pod
metadata: {name: resize}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: inplace
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {cpu: 100m, memory: 64Mi}
  - name: restarted
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resizePolicy: [{resourceName: memory, restartPolicy: RestartContainer}]
    resources:
      requests: {memory: 32Mi}
      limits: {memory: 64Mi}
`

// cgroupRead prints the first of the cgroup files (v2, then v1 paths)
// the container can read.
func cgroupRead(files ...string) string {
	var cmds []string
	for _, f := range files {
		cmds = append(cmds, "cat /sys/fs/cgroup/"+f+" 2>/dev/null")
	}
	return strings.Join(cmds, " || ")
}

// TestIntegrationResizeInPlace resizes a running pod through pods/resize
// on real containerd: the container keeps running with the new memory
// and CPU limits in its cgroup; the one whose memory resize policy is
// RestartContainer is restarted with the new limit.
func TestIntegrationResizeInPlace(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	ctx := context.Background()
	pods := cs.CoreV1().Pods("default")

	s.mustMinik(strings.Replace(resizePod, "NODE", n1.name, 1), "apply", "-f", "-")
	t.Cleanup(func() { pods.Delete(ctx, "resize", metav1.DeleteOptions{}) })
	waitPodRunning(t, cs, "default", "resize")

	memLimit := func(c string) string {
		return strings.TrimSpace(s.mustMinik("", "exec", "resize", "-c", c, "--", "sh", "-c",
			cgroupRead("memory.max", "memory/memory.limit_in_bytes")))
	}
	if got := memLimit("inplace"); got != "67108864" {
		t.Fatalf("memory limit before the resize = %q, want 67108864", got)
	}

	patch := `{"spec":{"containers":[` +
		`{"name":"inplace","resources":{"limits":{"cpu":"200m","memory":"96Mi"}}},` +
		`{"name":"restarted","resources":{"limits":{"memory":"96Mi"}}}]}}`
	patched, err := pods.Patch(ctx, "resize", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "resize")
	if err != nil {
		t.Fatalf("Patch(resize) = %v", err)
	}
	want := resource.MustParse("96Mi")
	eventually(t, 60*time.Second, "the resize actuated", func() error {
		p, err := pods.Get(ctx, "resize", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.ObservedGeneration < patched.Generation {
			return fmt.Errorf("observedGeneration %d, want %d", p.Status.ObservedGeneration, patched.Generation)
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Resources == nil || c.State.Running == nil {
				return fmt.Errorf("container %s: resources %v, state %+v", c.Name, c.Resources, c.State)
			}
			if q := c.Resources.Limits[corev1.ResourceMemory]; q.Cmp(want) != 0 {
				return fmt.Errorf("container %s: memory limit %s in status, want %s", c.Name, q.String(), want.String())
			}
			if wantRestarts := map[string]int32{"inplace": 0, "restarted": 1}[c.Name]; c.RestartCount != wantRestarts {
				return fmt.Errorf("container %s: %d restarts, want %d", c.Name, c.RestartCount, wantRestarts)
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodResizeInProgress || c.Type == corev1.PodResizePending {
				return fmt.Errorf("condition %s %s: %s", c.Type, c.Reason, c.Message)
			}
		}
		return nil
	})
	for _, c := range []string{"inplace", "restarted"} {
		if got := memLimit(c); got != "100663296" {
			t.Errorf("memory limit of %s after the resize = %q, want 100663296", c, got)
		}
	}
	cpu := strings.TrimSpace(s.mustMinik("", "exec", "resize", "-c", "inplace", "--", "sh", "-c",
		cgroupRead("cpu.max", "cpu/cpu.cfs_quota_us", "cpu,cpuacct/cpu.cfs_quota_us")))
	if cpu != "20000 100000" && cpu != "20000" {
		t.Errorf("cpu quota of inplace after the resize = %q, want 20000 (of 100000)", cpu)
	}
}
