package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// containerID is the containerd ID of one attempt of a pod's container.
func containerID(uid, name string, attempt int) string {
	sum := sha256.Sum256([]byte(uid + "/" + name))
	return fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:12]), attempt)
}

// StartContainer starts the next attempt of a container; see Containers.
func (c *Containerd) StartContainer(ctx context.Context, podUID string, spec *ContainerSpec) (*ContainerStatus, error) {
	if spec.Name == "" || spec.Image == "" {
		return nil, fmt.Errorf("container %q image %q: name and image must be set: %w", spec.Name, spec.Image, ErrInvalid)
	}
	ctx = c.ctx(ctx)
	defer c.lockPod(podUID)()
	sb, err := c.client.LoadContainer(ctx, sandboxID(podUID))
	if err != nil {
		return nil, podErr(podUID, err)
	}
	sbPID, err := taskPID(ctx, sb)
	if err != nil || sbPID == 0 {
		return nil, fmt.Errorf("pod %q: %w", podUID, ErrSandboxNotReady)
	}
	attempts, err := c.attempts(ctx, podUID, spec.Name)
	if err != nil {
		return nil, err
	}
	next := 0
	if n := len(attempts); n > 0 {
		last := attempts[n-1]
		if st := c.containerStatus(ctx, last); st.State == ContainerRunning {
			return &st, nil
		}
		next = attemptOf(last) + 1
		c.prune(ctx, attempts[:n-1])
	}
	img, err := c.ensureImage(ctx, spec.Image, orDefault(spec.PullPolicy), spec.PullAuth)
	if err != nil {
		return nil, err
	}
	sbLabels, err := sb.Labels(ctx)
	if err != nil {
		return nil, err
	}
	ctr, err := c.createContainer(ctx, sbLabels, sbPID, spec, img, next)
	if err != nil {
		return nil, err
	}
	labels, _ := ctr.Labels(ctx)
	if err := c.startTask(ctx, ctr, labels[LabelLogPath], spec); err != nil {
		c.deleteContainer(context.WithoutCancel(ctx), ctr)
		return nil, fmt.Errorf("container %q of pod %q: %w", spec.Name, podUID, err)
	}
	if fresh, err := c.client.LoadContainer(ctx, ctr.ID()); err == nil {
		ctr = fresh // with the labels set by startTask
	}
	st := c.containerStatus(ctx, ctr)
	return &st, nil
}

func orDefault(p PullPolicy) PullPolicy {
	if p == "" {
		return PullIfNotPresent
	}
	return p
}

func podErr(uid string, err error) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("pod %q: %w", uid, ErrNotFound)
	}
	return err
}

// createContainer creates attempt number attempt of spec in the sandbox.
func (c *Containerd) createContainer(ctx context.Context, sb map[string]string, sbPID uint32, spec *ContainerSpec, img client.Image, attempt int) (client.Container, error) {
	uid := sb[LabelPodUID]
	id := containerID(uid, spec.Name, attempt)
	logDir := filepath.Join(c.logDir(sb[LabelPodNamespace], sb[LabelPodName], uid), spec.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	labels := map[string]string{
		LabelKind:         KindContainer,
		LabelPodUID:       uid,
		LabelPodName:      sb[LabelPodName],
		LabelPodNamespace: sb[LabelPodNamespace],
		LabelContainer:    spec.Name,
		LabelAttempt:      strconv.Itoa(attempt),
		LabelLogPath:      filepath.Join(logDir, strconv.Itoa(attempt)+".log"),
		LabelImage:        spec.Image,
	}
	opts, err := c.containerSpec(ctx, uid, id, sbPID, spec, img)
	if err != nil {
		return nil, err
	}
	ctr, err := c.client.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithSnapshotter(c.cfg.Snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithContainerLabels(labels),
		client.WithNewSpec(opts...))
	if errdefs.IsAlreadyExists(err) {
		// Left by a failed earlier try of the same attempt.
		if old, lerr := c.client.LoadContainer(ctx, id); lerr == nil {
			c.deleteContainer(ctx, old)
		}
		return nil, fmt.Errorf("container %q: stale attempt removed, retry: %w", id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	return ctr, nil
}

// StopContainer stops the latest attempt of a container; see Containers.
func (c *Containerd) StopContainer(ctx context.Context, podUID, name string, grace time.Duration) error {
	ctx = c.ctx(ctx)
	attempts, err := c.attempts(ctx, podUID, name)
	if err != nil {
		return err
	}
	if len(attempts) == 0 {
		return fmt.Errorf("container %q of pod %q: %w", name, podUID, ErrNotFound)
	}
	return c.stopContainer(ctx, attempts[len(attempts)-1], grace)
}

func (c *Containerd) stopContainer(ctx context.Context, ctr client.Container, grace time.Duration) error {
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.killTask(ctx, ctr.ID(), task, grace)
}

// attempts lists the containerd containers of one pod container, oldest
// attempt first.
func (c *Containerd) attempts(ctx context.Context, uid, name string) ([]client.Container, error) {
	ctrs, err := c.client.Containers(ctx,
		fmt.Sprintf(`labels."%s"==%s,labels."%s"==%s`, LabelPodUID, strconv.Quote(uid), LabelContainer, strconv.Quote(name)))
	if err != nil {
		return nil, err
	}
	sort.Slice(ctrs, func(i, j int) bool { return attemptOf(ctrs[i]) < attemptOf(ctrs[j]) })
	return ctrs, nil
}

// attemptOf reads the attempt number from the container's ID.
func attemptOf(ctr client.Container) int {
	id := ctr.ID()
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '-' {
			n, _ := strconv.Atoi(id[i+1:])
			return n
		}
	}
	return 0
}

// prune removes older attempts and their logs.
func (c *Containerd) prune(ctx context.Context, old []client.Container) {
	for _, ctr := range old {
		labels, _ := ctr.Labels(ctx)
		c.deleteContainer(ctx, ctr)
		if p := labels[LabelLogPath]; p != "" {
			os.Remove(p)
		}
	}
}

// deleteContainer kills and deletes the task, the container and its snapshot.
func (c *Containerd) deleteContainer(ctx context.Context, ctr client.Container) {
	if task, err := ctr.Task(ctx, nil); err == nil {
		if err := c.killTask(ctx, ctr.ID(), task, 0); err != nil {
			c.lg.Warn("kill task", "container", ctr.ID(), "err", err)
		}
		c.deleteTask(ctx, task)
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		c.lg.Warn("delete container", "container", ctr.ID(), "err", err)
	}
}

// runningPID returns the PID of the running process of the latest attempt
// of container name of pod uid; ErrInvalid when it does not run.
func (c *Containerd) runningPID(ctx context.Context, uid, name string) (uint32, error) {
	attempts, err := c.attempts(ctx, uid, name)
	if err != nil {
		return 0, err
	}
	if n := len(attempts); n > 0 {
		if pid, err := taskPID(ctx, attempts[n-1]); err == nil && pid > 0 {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("container %q of pod %q is not running: %w", name, uid, ErrInvalid)
}
