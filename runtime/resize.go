package runtime

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

var _ Resizer = (*Containerd)(nil)

// ResizeContainer updates a running container's cgroup; see Resizer.
func (c *Containerd) ResizeContainer(ctx context.Context, podUID, name string, r Resources) error {
	ctx = c.ctx(ctx)
	defer c.lockPod(podUID)()
	attempts, err := c.attempts(ctx, podUID, name)
	if err != nil {
		return err
	}
	if len(attempts) == 0 {
		return fmt.Errorf("container %q of pod %q: %w", name, podUID, ErrNotFound)
	}
	ctr := attempts[len(attempts)-1]
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("container %q of pod %q is not running: %w", name, podUID, ErrInvalid)
	}
	if err != nil {
		return err
	}
	if err := task.Update(ctx, client.WithResources(linuxResources(r))); err != nil {
		return fmt.Errorf("resize container %q of pod %q: %w", name, podUID, err)
	}
	// The spec says what the container was given, for whoever reads it
	// later; the running task already has it.
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return err
	}
	setResources(spec, r)
	return ctr.Update(ctx, client.UpdateContainerOpts(client.WithSpec(spec)))
}
