//go:build integration

package runtime_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/minik-dev/minik/runtime"
)

// An image volume's snapshot lives as long as its pod: RemovePod removes
// it, and GC removes one whose pod's files are gone.
func TestIntegrationImageVolumeSnapshot(t *testing.T) {
	e := newEnv(t)
	pods := []*runtime.PodSpec{
		{UID: "imgvol-removed", Namespace: "default", Name: "removed"},
		{UID: "imgvol-stray", Namespace: "default", Name: "stray"},
	}
	ctx := namespaces.WithNamespace(testCtx(t), e.cfg.Namespace)
	sn := e.rt.Client().SnapshotService("overlayfs")
	key := func(p *runtime.PodSpec) string { return "minik-imagevolume-" + p.UID + "-img" }
	for _, p := range pods {
		p.Volumes = []runtime.Volume{{Name: "img", Image: e.image, PullPolicy: runtime.PullNever}}
		e.runPod(t, p, &runtime.ContainerSpec{Name: "c", Command: []string{"sleep", "3600"},
			Mounts: []runtime.Mount{{Volume: "img", Path: "/img"}}})
		if _, err := sn.Stat(ctx, key(p)); err != nil {
			t.Fatalf("pod %s: image volume snapshot: %v", p.UID, err)
		}
	}

	if err := e.rt.RemovePod(ctx, pods[0].UID); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, key(pods[0])); !errdefs.IsNotFound(err) {
		t.Errorf("after RemovePod: Stat(%s) = %v, want not found", key(pods[0]), err)
	}

	if err := os.RemoveAll(filepath.Join(e.cfg.DataDir, "sandboxes", pods[1].UID)); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.GC(ctx, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, key(pods[1])); !errdefs.IsNotFound(err) {
		t.Errorf("after GC: Stat(%s) = %v, want not found", key(pods[1]), err)
	}
}
