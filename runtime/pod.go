package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// StopPod stops the pod's containers and sandbox; see Pods.
func (c *Containerd) StopPod(ctx context.Context, podUID string, grace time.Duration) error {
	ctx = c.ctx(ctx)
	defer c.lockPod(podUID)()
	if _, err := c.client.LoadContainer(ctx, sandboxID(podUID)); err != nil {
		return podErr(podUID, err)
	}
	return c.stopPodLocked(ctx, podUID, grace)
}

// stopPodLocked stops every container of the pod, then its network and
// sandbox. The pod's lock must be held.
func (c *Containerd) stopPodLocked(ctx context.Context, uid string, grace time.Duration) error {
	ctrs, err := c.podContainers(ctx, uid)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	var sb client.Container
	for _, ctr := range ctrs {
		if ctr.ID() == sandboxID(uid) {
			sb = ctr
			continue
		}
		wg.Go(func() {
			if err := c.stopContainer(ctx, ctr, grace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	if sb == nil {
		return nil
	}
	return c.stopSandbox(ctx, uid, sb)
}

// stopSandbox tears down the network while the namespace exists, then kills
// and deletes the pause task.
func (c *Containerd) stopSandbox(ctx context.Context, uid string, sb client.Container) error {
	task, err := sb.Task(ctx, nil)
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	labels, err := sb.Labels(ctx)
	if err != nil {
		return err
	}
	// A pod on the node's network had none set up.
	if c.cfg.Network != nil && labels[LabelHostNetwork] != "true" {
		netns := ""
		if pid, _ := taskPID(ctx, sb); pid > 0 {
			netns = netnsPath(pid)
		}
		if err := c.cfg.Network.Teardown(ctx, uid, netns); err != nil {
			return fmt.Errorf("pod %q: network teardown: %w", uid, err)
		}
	}
	if task == nil {
		return nil
	}
	if err := c.killTask(ctx, sb.ID(), task, 0); err != nil {
		return err
	}
	c.deleteTask(ctx, task)
	return nil
}

// RemovePod deletes everything of the pod; see Pods.
func (c *Containerd) RemovePod(ctx context.Context, podUID string) error {
	ctx = c.ctx(ctx)
	defer c.lockPod(podUID)()
	if err := c.stopPodLocked(ctx, podUID, 0); err != nil {
		return err
	}
	ctrs, err := c.podContainers(ctx, podUID)
	if err != nil {
		return err
	}
	var logDir string
	for _, ctr := range ctrs {
		if l, err := ctr.Labels(ctx); err == nil && l[LabelPodName] != "" {
			logDir = c.logDir(l[LabelPodNamespace], l[LabelPodName], podUID)
		}
		c.deleteContainer(ctx, ctr)
	}
	if logDir != "" {
		if err := os.RemoveAll(logDir); err != nil {
			return err
		}
	}
	if err := c.removeImageVolumes(ctx, podUID, c.sandboxDir(podUID)); err != nil {
		return err
	}
	if err := os.RemoveAll(c.sandboxDir(podUID)); err != nil {
		return err
	}
	removeCgroup(filepath.Join(c.cfg.CgroupParent, "pod"+podUID))
	c.mu.Lock()
	delete(c.locks, podUID)
	c.mu.Unlock()
	return nil
}

// podContainers returns the sandbox and all container attempts of a pod.
func (c *Containerd) podContainers(ctx context.Context, uid string) ([]client.Container, error) {
	return c.client.Containers(ctx, fmt.Sprintf(`labels."%s"==%s`, LabelPodUID, strconv.Quote(uid)))
}

// PodStatus returns the pod's status; see Pods.
func (c *Containerd) PodStatus(ctx context.Context, podUID string) (*PodStatus, error) {
	return c.podStatusLocked(c.ctx(ctx), podUID)
}

// podStatusLocked builds a pod's status. The lock is not needed: it only reads.
func (c *Containerd) podStatusLocked(ctx context.Context, uid string) (*PodStatus, error) {
	ctrs, err := c.podContainers(ctx, uid)
	if err != nil {
		return nil, err
	}
	pods := c.statuses(ctx, ctrs)
	if len(pods) == 0 {
		return nil, fmt.Errorf("pod %q: %w", uid, ErrNotFound)
	}
	return pods[0], nil
}

// ListPods returns every pod with a sandbox; see Pods.
func (c *Containerd) ListPods(ctx context.Context) ([]*PodStatus, error) {
	ctx = c.ctx(ctx)
	ctrs, err := c.client.Containers(ctx, fmt.Sprintf(`labels."%s"`, LabelKind))
	if err != nil {
		return nil, err
	}
	return c.statuses(ctx, ctrs), nil
}

// statuses groups containers by pod; pods without a sandbox are left out.
func (c *Containerd) statuses(ctx context.Context, ctrs []client.Container) []*PodStatus {
	pods := map[string]*PodStatus{}
	latest := map[string]ContainerStatus{}
	for _, ctr := range ctrs {
		info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		uid := info.Labels[LabelPodUID]
		if info.Labels[LabelKind] == KindSandbox {
			pods[uid] = c.sandboxStatus(ctx, ctr, info.Labels, info.CreatedAt)
			continue
		}
		st := c.containerStatus(ctx, ctr)
		key := uid + "/" + st.Name
		if old, ok := latest[key]; !ok || st.Attempt > old.Attempt {
			latest[key] = st
		}
	}
	for key, st := range latest {
		uid := key[:len(key)-len(st.Name)-1]
		if p := pods[uid]; p != nil {
			p.Containers = append(p.Containers, st)
		}
	}
	out := make([]*PodStatus, 0, len(pods))
	for _, p := range pods {
		sort.Slice(p.Containers, func(i, j int) bool { return p.Containers[i].Name < p.Containers[j].Name })
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (c *Containerd) sandboxStatus(ctx context.Context, sb client.Container, labels map[string]string, created time.Time) *PodStatus {
	p := &PodStatus{
		UID: labels[LabelPodUID], Namespace: labels[LabelPodNamespace], Name: labels[LabelPodName],
		State: SandboxNotReady, IP: labels[LabelPodIP], CreatedAt: created,
	}
	if pid, _ := taskPID(ctx, sb); pid > 0 {
		p.State = SandboxReady
		p.NetNSPath = netnsPath(pid)
	}
	return p
}

// containerStatus reads one attempt's state from its task and labels.
func (c *Containerd) containerStatus(ctx context.Context, ctr client.Container) ContainerStatus {
	info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return ContainerStatus{ID: ctr.ID(), State: ContainerUnknown}
	}
	l := info.Labels
	st := ContainerStatus{
		Name: l[LabelContainer], ID: ctr.ID(), Image: l[LabelImage], Attempt: attemptOf(ctr),
		State: ContainerCreated, CreatedAt: info.CreatedAt, LogPath: l[LabelLogPath],
		StartedAt: parseTime(l[LabelStartedAt]),
	}
	if code, ok := l[LabelExitCode]; ok {
		st.ExitCode, _ = strconv.Atoi(code)
		st.FinishedAt = parseTime(l[LabelFinishedAt])
		st.State, st.Reason = ContainerExited, exitReason(st.ExitCode)
		return orderTimes(st)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		if !st.StartedAt.IsZero() {
			st.State = ContainerUnknown
		}
		return st
	}
	ts, err := task.Status(ctx)
	switch {
	case err != nil:
		st.State = ContainerUnknown
	case ts.Status == client.Stopped:
		if c.waitRecorded(ctx, ctr.ID()) {
			// The watcher has flushed the log and recorded the exit.
			if fresh, err := c.client.LoadContainer(ctx, ctr.ID()); err == nil {
				return c.containerStatus(ctx, fresh)
			}
		}
		st.State, st.ExitCode, st.FinishedAt = ContainerExited, int(ts.ExitStatus), ts.ExitTime
		st.Reason = exitReason(st.ExitCode)
		st = orderTimes(st)
	case ts.Status == client.Created:
		st.State = ContainerCreated
	default:
		st.State = ContainerRunning
	}
	return st
}

// orderTimes keeps startedAt ≤ finishedAt: the start is stamped when
// task.Start returns, the exit by containerd, and a process that exits at
// once can beat the stamp.
func orderTimes(st ContainerStatus) ContainerStatus {
	if !st.FinishedAt.IsZero() && st.StartedAt.After(st.FinishedAt) {
		st.StartedAt = st.FinishedAt
	}
	return st
}

// waitRecorded waits (bounded) for the watcher of a stopped task to finish
// recording its exit. It reports false when there is no watcher.
func (c *Containerd) waitRecorded(ctx context.Context, id string) bool {
	c.mu.Lock()
	w := c.tasks[id]
	c.mu.Unlock()
	if w == nil {
		return false
	}
	select {
	case <-w.exited:
		return true
	case <-ctx.Done():
	case <-time.After(ioDrainTimeout + 3*time.Second):
	}
	return false
}

func exitReason(code int) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
