package runtimetest

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// BareStart is the baseline of pod start benchmarks: it starts one plain
// containerd container running `sleep 3600` from img (NewContainer,
// NewTask, Start), returns how long that took, and removes it again. ctx
// must carry the containerd namespace img is in.
func BareStart(ctx context.Context, cl *client.Client, img client.Image, id string) (time.Duration, error) {
	start := time.Now()
	ctr, err := cl.NewContainer(ctx, id, client.WithNewSnapshot(id, img),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "3600")))
	if err != nil {
		return 0, err
	}
	defer ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		return 0, err
	}
	defer task.Delete(context.WithoutCancel(ctx))
	if err := task.Start(ctx); err != nil {
		return 0, err
	}
	took := time.Since(start)
	statusC, err := task.Wait(ctx)
	if err != nil {
		return took, err
	}
	task.Kill(ctx, syscall.SIGKILL)
	select {
	case <-statusC:
		return took, nil
	case <-time.After(10 * time.Second):
		return took, fmt.Errorf("bare task %s did not exit", id)
	}
}
