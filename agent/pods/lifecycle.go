package pods

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// Events of container lifecycle hooks, as the kubelet records them.
const (
	EventFailedPostStartHook = "FailedPostStartHook"
	EventFailedPreStopHook   = "FailedPreStopHook"
)

// minHookGrace is what is left of the grace period for the stop signal
// after a preStop hook used it up, as the kubelet leaves at least two
// seconds.
const minHookGrace = 2 * time.Second

// errNoHandler is a hook with none of exec, httpGet and sleep set.
var errNoHandler = errors.New("the hook has no handler")

// maxHookOutput bounds the output of an exec hook kept for its event.
const maxHookOutput = 10 << 10

// runHook runs one lifecycle handler of container c, with the same
// exec and httpGet code as probes; an httpGet is sent from the node to
// the pod's IP unless it names a host. Errors read as the kubelet's.
func (w *worker) runHook(ctx context.Context, h *corev1.LifecycleHandler, c *corev1.Container, podIP string) error {
	pod := fmt.Sprintf("%s_%s(%s)", w.pod.Name, w.pod.Namespace, w.uid)
	switch {
	case h.Exec != nil:
		out := &cappedBuffer{left: maxHookOutput}
		if err := w.execIn(ctx, c.Name, h.Exec.Command, out); err != nil {
			return fmt.Errorf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %w, message: %q",
				h.Exec.Command, c.Name, pod, err, out.output())
		}
		return nil
	case h.HTTPGet != nil:
		if err := httpProbe(ctx, h.HTTPGet, c, podIP); err != nil {
			return fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %w",
				h.HTTPGet.Path, c.Name, pod, err)
		}
		return nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errNoHandler
}

func (b *cappedBuffer) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.String()
}

// cappedBuffer keeps the first bytes written to it, up to left, and
// accepts the rest without keeping it.
type cappedBuffer struct {
	mu sync.Mutex // stdout and stderr may be copied at once
	bytes.Buffer
	left int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := p[:min(len(p), max(b.left, 0))]
	b.left -= len(keep)
	b.Buffer.Write(keep)
	return len(p), nil
}

// postStart runs c's postStart hook, if any, right after the container
// started; the container is not reported running before it returns. A
// failed hook kills the container, which then restarts as the restart
// policy says. It is bounded by the pod's start context, cancelled when
// the pod is deleted.
func (w *worker) postStart(ctx context.Context, c *corev1.Container, podIP string) {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return
	}
	err := w.runHook(w.startCtx, c.Lifecycle.PostStart, c, podIP)
	if err == nil || w.startCtx.Err() != nil {
		return
	}
	w.lg.Info("postStart hook failed, killing container", "container", c.Name, "err", err)
	w.event(c.Name, corev1.EventTypeWarning, EventFailedPostStartHook, "%v", err)
	w.event(c.Name, corev1.EventTypeNormal, EventKilling, "Container %s failed post-start hook, will be restarted", c.Name)
	if err := w.stopContainer(ctx, c, podIP); err != nil {
		w.lg.Warn("stop container after a failed postStart hook", "container", c.Name, "err", err)
	}
}

// stopContainer stops c as the kubelet does: its preStop hook first,
// then the stop signal with what is left of the grace period.
func (w *worker) stopContainer(ctx context.Context, c *corev1.Container, podIP string) error {
	grace, err := w.preStop(ctx, c, podIP, w.grace())
	if err != nil {
		w.preStopFailed(c.Name, err)
	}
	return w.m.cfg.Runtime.StopContainer(ctx, string(w.uid), c.Name, grace)
}

// preStop runs c's preStop hook, if any, bounded by grace, and returns
// the grace left for the stop signal. With no grace (a forced stop) the
// hook is not run, as by the kubelet.
func (w *worker) preStop(ctx context.Context, c *corev1.Container, podIP string, grace time.Duration) (time.Duration, error) {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || grace <= 0 {
		return grace, nil
	}
	begin := time.Now()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err := w.runHook(hctx, c.Lifecycle.PreStop, c, podIP)
	if errors.Is(err, context.DeadlineExceeded) && hctx.Err() != nil {
		err = fmt.Errorf("did not complete within the grace period of %s", grace)
	}
	return max(grace-time.Since(begin), minHookGrace), err
}

func (w *worker) preStopFailed(name string, err error) {
	w.lg.Info("preStop hook failed", "container", name, "err", err)
	w.event(name, corev1.EventTypeWarning, EventFailedPreStopHook, "%v", err)
}

// stopRunning stops the running containers of the pod before the pod
// itself is stopped: the app containers (and any init container) in
// parallel, each after its preStop hook; then, if the pod has sidecars,
// the sidecars one at a time in reverse order, so that they serve the app
// containers until those have stopped. Without sidecars only containers
// with a preStop hook are stopped here; the pod's stop takes the rest.
func (w *worker) stopRunning(ctx context.Context, rs *runtime.PodStatus, grace time.Duration) {
	if rs == nil {
		return
	}
	begin := time.Now()
	var first, sidecars []*corev1.Container
	for i := range w.pod.Spec.InitContainers {
		if c := &w.pod.Spec.InitContainers[i]; isSidecar(c) {
			sidecars = append(sidecars, c)
		} else {
			first = append(first, c)
		}
	}
	for i := range w.pod.Spec.Containers {
		first = append(first, &w.pod.Spec.Containers[i])
	}
	w.stopAll(ctx, rs, first, grace, len(sidecars) > 0)
	for i := len(sidecars) - 1; i >= 0; i-- {
		left := grace
		if grace > 0 {
			left = max(grace-time.Since(begin), minHookGrace)
		}
		w.stopAll(ctx, rs, sidecars[i:i+1], left, true)
	}
}

// stopAll stops the running containers of list in parallel, each after
// its preStop hook; all of them, or only those with a hook.
func (w *worker) stopAll(ctx context.Context, rs *runtime.PodStatus, list []*corev1.Container, grace time.Duration, all bool) {
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, c := range list {
		rc := rs.Container(c.Name)
		hook := c.Lifecycle != nil && c.Lifecycle.PreStop != nil
		if rc == nil || rc.State != runtime.ContainerRunning || !(hook || all) {
			continue
		}
		wg.Go(func() {
			left, err := w.preStop(ctx, c, rs.IP, grace)
			errs[i] = err
			if err := w.m.cfg.Runtime.StopContainer(ctx, string(w.uid), c.Name, left); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				w.lg.Warn("stop container", "container", c.Name, "err", err)
			}
		})
	}
	wg.Wait()
	// Events are recorded here, by the worker's goroutine.
	for i, err := range errs {
		if err != nil {
			w.preStopFailed(list[i].Name, err)
		}
	}
}
