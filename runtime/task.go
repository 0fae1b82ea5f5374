package runtime

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/minik-dev/minik/runtime/internal/crilog"
)

// taskWatch follows one application task: it copies its output into the
// log and, when it exits, records the exit status in the container's labels
// and deletes the task.
type taskWatch struct {
	id     string
	hub    *attachHub    // the task's output and stdin, for Attach
	exited chan struct{} // closed once the exit is recorded
	ctx    context.Context
	cancel context.CancelFunc
}

// detach stops following the task without touching it.
func (w *taskWatch) detach() { w.cancel() }

// ioDrainTimeout bounds the wait for a dead task's output after its exit.
const ioDrainTimeout = 2 * time.Second

// startTask creates and starts the task of an application container with
// its output going to logPath (and attach sessions), its stdin open for
// attach sessions when spec asks, and follows it.
func (c *Containerd) startTask(ctx context.Context, ctr client.Container, logPath string, spec *ContainerSpec) error {
	logs, err := crilog.Open(logPath)
	if err != nil {
		return err
	}
	hub, stdin := newAttachHub(spec.Stdin, spec.StdinOnce)
	stdout, stderr := hub.writer(logs.Stream("stdout"), false), hub.writer(logs.Stream("stderr"), true)
	opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(c.fifoDir())}
	if spec.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	task, err := ctr.NewTask(ctx, cio.NewCreator(opts...))
	if err != nil {
		hub.close()
		logs.Close()
		return fmt.Errorf("create task: %w", err)
	}
	hub.closeIO = func() { c.closeStdin(task) }
	w, statusC, err := c.watch(ctr.ID(), task, hub)
	if err != nil {
		c.deleteTask(ctx, task)
		hub.close()
		logs.Close()
		return err
	}
	if err := task.Start(ctx); err != nil {
		w.detach()
		c.deleteTask(ctx, task)
		logs.Close()
		return fmt.Errorf("start task: %w", err)
	}
	if err := setLabel(ctx, ctr, LabelStartedAt, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		c.lg.Warn("record start time", "container", ctr.ID(), "err", err)
	}
	c.follow(w, ctr, task, statusC, logs, stdout, stderr)
	return nil
}

// watch registers a watcher for task and subscribes to its exit (before
// the task starts, so no exit is missed).
func (c *Containerd) watch(id string, task client.Task, hub *attachHub) (*taskWatch, <-chan client.ExitStatus, error) {
	wctx, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), c.cfg.Namespace))
	statusC, err := task.Wait(wctx)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("wait task: %w", err)
	}
	w := &taskWatch{id: id, hub: hub, exited: make(chan struct{}), ctx: wctx, cancel: cancel}
	c.mu.Lock()
	c.tasks[id] = w
	c.mu.Unlock()
	return w, statusC, nil
}

// follow waits, in a goroutine, for the task to exit and records it.
func (c *Containerd) follow(w *taskWatch, ctr client.Container, task client.Task, statusC <-chan client.ExitStatus, logs *crilog.File, streams ...interface{ Close() error }) {
	c.wg.Go(func() {
		defer func() {
			c.mu.Lock()
			if c.tasks[w.id] == w {
				delete(c.tasks, w.id)
			}
			c.mu.Unlock()
		}()
		st, ok := c.waitTask(w, task, statusC)
		// Output copied after this is not seen by attach sessions, which
		// end now; the log still gets it.
		defer w.hub.close()
		if !ok {
			// Detached: stop copying but keep the FIFOs for the next runtime.
			if io := task.IO(); io != nil {
				io.Cancel()
			}
			logs.Close()
			return
		}
		closeIO(task.IO())
		for _, s := range streams {
			s.Close()
		}
		logs.Close()
		ctx := namespaces.WithNamespace(context.Background(), c.cfg.Namespace)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.recordExit(ctx, ctr, task, st); err != nil {
			c.lg.Warn("record container exit", "container", w.id, "err", err)
		}
		close(w.exited)
	})
}

// waitTask returns the task's exit status, waiting again when the
// connection to containerd breaks (containerd restarts; the task lives on in
// its shim). It returns false when the watcher is detached.
func (c *Containerd) waitTask(w *taskWatch, task client.Task, statusC <-chan client.ExitStatus) (client.ExitStatus, bool) {
	for {
		st := <-statusC
		if w.ctx.Err() != nil {
			return st, false
		}
		if st.Error() == nil {
			return st, true
		}
		c.lg.Debug("task wait interrupted", "container", w.id, "err", st.Error())
		for {
			select {
			case <-w.ctx.Done():
				return st, false
			case <-time.After(200 * time.Millisecond):
			}
			var err error
			statusC, err = task.Wait(w.ctx)
			if err == nil {
				break
			}
			if errdefs.IsNotFound(err) {
				return client.ExitStatus{}, true
			}
		}
	}
}

// closeStdin ends a task's standard input.
func (c *Containerd) closeStdin(task client.Task) {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), c.cfg.Namespace), 10*time.Second)
	defer cancel()
	if err := task.CloseIO(ctx, client.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
		c.lg.Debug("close task stdin", "task", task.ID(), "err", err)
	}
}

// closeIO waits (bounded) for output still in the FIFOs, then releases
// and removes them.
func closeIO(io cio.IO) {
	if io == nil {
		return
	}
	done := make(chan struct{})
	go func() { io.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(ioDrainTimeout):
	}
	io.Cancel()
	io.Close()
}

// recordExit stores the exit status in the container's labels and deletes
// the task.
func (c *Containerd) recordExit(ctx context.Context, ctr client.Container, task client.Task, st client.ExitStatus) error {
	code, at, err := st.Result()
	if err != nil {
		code, at = 255, time.Now()
	}
	if at.IsZero() {
		at = time.Now()
	}
	_, err = ctr.SetLabels(ctx, map[string]string{
		LabelExitCode:   strconv.Itoa(int(code)),
		LabelFinishedAt: at.UTC().Format(time.RFC3339Nano),
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	c.deleteTask(ctx, task)
	return nil
}

// deleteTask kills and deletes a task, ignoring one already gone.
func (c *Containerd) deleteTask(ctx context.Context, task client.Task) {
	if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		c.lg.Warn("delete task", "task", task.ID(), "err", err)
	}
}

// adopt follows the tasks of application containers left by a previous
// runtime: running ones keep running and logging; exited ones are recorded.
func (c *Containerd) adopt(ctx context.Context) error {
	ctrs, err := c.client.Containers(ctx, `labels."`+LabelKind+`"==`+KindContainer)
	if err != nil {
		return err
	}
	for _, ctr := range ctrs {
		if err := c.adoptOne(ctx, ctr); err != nil {
			c.lg.Warn("adopt container", "container", ctr.ID(), "err", err)
		}
	}
	return nil
}

func (c *Containerd) adoptOne(ctx context.Context, ctr client.Container) error {
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return err
	}
	if _, done := labels[LabelExitCode]; done {
		return nil
	}
	logs, err := crilog.Open(labels[LabelLogPath])
	if err != nil {
		return err
	}
	// The stdin of an adopted task is not reopened: attach sessions get
	// its output only.
	hub, _ := newAttachHub(false, false)
	stdout, stderr := hub.writer(logs.Stream("stdout"), false), hub.writer(logs.Stream("stderr"), true)
	task, err := ctr.Task(ctx, cio.NewAttach(cio.WithStreams(nil, stdout, stderr)))
	if err != nil {
		logs.Close()
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	w, statusC, err := c.watch(ctr.ID(), task, hub)
	if err != nil {
		logs.Close()
		return err
	}
	c.follow(w, ctr, task, statusC, logs, stdout, stderr)
	return nil
}

// waitExit waits for a followed task to be recorded as exited, up to d.
// It reports whether it exited.
func (c *Containerd) waitExit(ctx context.Context, id string, task client.Task, d time.Duration) bool {
	c.mu.Lock()
	w := c.tasks[id]
	c.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	if w != nil {
		select {
		case <-w.exited:
			return true
		case <-timer.C:
		case <-ctx.Done():
		}
		return false
	}
	st, err := task.Status(ctx)
	for err == nil && st.Status != client.Stopped {
		select {
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
		st, err = task.Status(ctx)
	}
	return true
}

// killTask sends SIGTERM, waits up to grace, then SIGKILL and waits again.
func (c *Containerd) killTask(ctx context.Context, id string, task client.Task, grace time.Duration) error {
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %q: send SIGTERM: %w", id, err)
		}
		if c.waitExit(ctx, id, task, grace) {
			return nil
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %q: send SIGKILL: %w", id, err)
	}
	if !c.waitExit(ctx, id, task, 10*time.Second) {
		return fmt.Errorf("container %q did not exit after SIGKILL", id)
	}
	return nil
}

func setLabel(ctx context.Context, ctr client.Container, k, v string) error {
	_, err := ctr.SetLabels(ctx, map[string]string{k: v})
	return err
}
