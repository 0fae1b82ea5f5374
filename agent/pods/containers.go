package pods

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// startContainers runs the init containers one at a time, each to
// success, then starts or restarts the app containers as the restart
// policy says. It reports whether it started anything.
func (w *worker) startContainers(ctx context.Context, rs *runtime.PodStatus) bool {
	policy := w.pod.Spec.RestartPolicy
	started := false
	initialized := w.initialized(rs)
	for i := range w.pod.Spec.InitContainers {
		c := &w.pod.Spec.InitContainers[i]
		rc := rs.Container(c.Name)
		if isSidecar(c) {
			up, did := w.syncSidecar(ctx, c, rs)
			started = started || did
			if !up && !initialized {
				return started
			}
			continue
		}
		switch {
		case initialized:
			continue // init containers ran before the app containers did
		case rc == nil:
			return w.start(ctx, c, rs) || started
		case rc.State == runtime.ContainerRunning || rc.State == runtime.ContainerCreated:
			return started
		case rc.State == runtime.ContainerExited && rc.ExitCode == 0:
			w.clear(c.Name)
			continue
		case policy == corev1.RestartPolicyNever:
			w.exited(rc)
			return started
		default:
			return w.restart(ctx, c, rs, rc) || started
		}
	}
	for i := range w.pod.Spec.Containers {
		c := &w.pod.Spec.Containers[i]
		rc := rs.Container(c.Name)
		switch {
		case rc == nil:
			started = w.start(ctx, c, rs) || started
		case rc.State == runtime.ContainerRunning && rc.Image != c.Image:
			started = w.replace(ctx, c, rs) || started
		case rc.State == runtime.ContainerRunning:
			w.clear(c.Name)
			w.probe(ctx, c, rc, rs.IP)
		case rc.State == runtime.ContainerCreated:
		case shouldRestart(policy, rc):
			started = w.restart(ctx, c, rs, rc) || started
		default:
			w.exited(rc)
		}
	}
	return w.startEphemeral(ctx, rs) || started
}

// isSidecar tells whether c is a restartable init container (a sidecar):
// it starts in its turn among the init containers, but keeps running
// beside the app containers and restarts whatever the pod's policy.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// initialized tells whether the pod's app containers have been created:
// from then on its init containers are not run again, and a sidecar that
// restarts does not hold the others back.
func (w *worker) initialized(rs *runtime.PodStatus) bool {
	for i := range w.pod.Spec.Containers {
		if rs.Container(w.pod.Spec.Containers[i].Name) != nil {
			return true
		}
	}
	return false
}

// syncSidecar starts, probes or restarts the sidecar c. It reports
// whether c runs and has passed its startup probe, so that the containers
// after it may start, and whether it started an attempt.
func (w *worker) syncSidecar(ctx context.Context, c *corev1.Container, rs *runtime.PodStatus) (up, started bool) {
	rc := rs.Container(c.Name)
	switch {
	case rc == nil:
		return false, w.start(ctx, c, rs)
	case rc.State == runtime.ContainerRunning:
		w.clear(c.Name)
		w.probe(ctx, c, rc, rs.IP)
		ps := w.probes[c.Name]
		return ps != nil && ps.started, false
	case rc.State == runtime.ContainerCreated:
		return false, false
	}
	return false, w.restart(ctx, c, rs, rc)
}

// replace stops a container whose image was changed in the pod spec and
// starts it again with the new one, whatever the restart policy.
func (w *worker) replace(ctx context.Context, c *corev1.Container, rs *runtime.PodStatus) bool {
	w.lg.Info("container image changed, restarting it", "container", c.Name, "image", c.Image)
	w.event(c.Name, corev1.EventTypeNormal, EventKilling, "Container %s definition changed, will be restarted", c.Name)
	if err := w.stopContainer(ctx, c, rs.IP); err != nil {
		w.lg.Warn("stop container", "container", c.Name, "err", err)
		return false
	}
	delete(w.probes, c.Name)
	return w.start(ctx, c, rs)
}

// shouldRestart applies the restart policy to an exited container.
func shouldRestart(policy corev1.RestartPolicy, rc *runtime.ContainerStatus) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return rc.ExitCode != 0 || rc.State == runtime.ContainerUnknown
	}
	return true
}

// clear forgets the waiting state of a container that runs or completed.
func (w *worker) clear(name string) {
	delete(w.waiting, name)
	w.pull.reset(name)
}

// exited records an exited attempt, for the lastState of the next one.
func (w *worker) exited(rc *runtime.ContainerStatus) {
	delete(w.waiting, rc.Name)
	delete(w.probes, rc.Name)
	w.exits[rc.Name] = *rc
}

// restart starts the next attempt of an exited container once its
// back-off has passed; until then it waits in CrashLoopBackOff.
func (w *worker) restart(ctx context.Context, c *corev1.Container, rs *runtime.PodStatus, rc *runtime.ContainerStatus) bool {
	w.exits[c.Name] = *rc
	delete(w.probes, c.Name)
	if !rc.StartedAt.IsZero() && rc.FinishedAt.Sub(rc.StartedAt) >= resetAfter {
		w.crash.reset(c.Name)
	}
	now := w.m.cfg.Now()
	until, delay := w.crash.next(c.Name, rc.Attempt, now)
	if now.Before(until) {
		if prev := w.waiting[c.Name]; prev == nil || prev.Reason != reasonCrashLoopBackOff {
			w.event(c.Name, corev1.EventTypeWarning, EventBackOff, "Back-off restarting failed container %s in pod %s_%s(%s)",
				c.Name, w.pod.Name, w.pod.Namespace, w.pod.UID)
		}
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{
			Reason: reasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				delay, c.Name, w.pod.Name, w.pod.Namespace, w.pod.UID),
		}
		return false
	}
	return w.start(ctx, c, rs)
}

// start starts the next attempt of a container, pulling its image first if
// needed. Failures put the container in a waiting state and back off.
func (w *worker) start(ctx context.Context, c *corev1.Container, rs *runtime.PodStatus) bool {
	now := w.m.cfg.Now()
	if e, ok := w.pull.delayed(c.Name, now); ok {
		if cur := w.waiting[c.Name]; cur != nil && (cur.Reason == reasonErrImagePull || cur.Reason == reasonImagePullBackOff) {
			if cur.Reason == reasonErrImagePull {
				w.event(c.Name, corev1.EventTypeNormal, EventBackOff, "Back-off pulling image %q", c.Image)
				w.event(c.Name, corev1.EventTypeWarning, EventFailed, "Error: %s", reasonImagePullBackOff)
			}
			w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: reasonImagePullBackOff,
				Message: fmt.Sprintf("Back-off pulling image %q: %s", c.Image, e.message)}
		}
		return false
	}
	spec, err := w.m.containerSpec(w.pod, c, rs.IP, func(reason, msg string) {
		w.event("", corev1.EventTypeWarning, reason, "%s", msg)
	})
	if err != nil {
		w.fail(c.Name, reasonConfigError, err)
		return false
	}
	if err := w.m.mountTerminationFile(w.uid, c, rs.Container(c.Name), spec); err != nil {
		w.fail(c.Name, reasonRunError, err)
		return false
	}
	if err := w.pullImage(w.startCtx, c, spec.PullAuth); err != nil {
		w.startFailed(ctx, c.Name, err)
		return false
	}
	st, err := w.m.cfg.Runtime.StartContainer(w.startCtx, string(w.uid), spec)
	if err != nil {
		w.startFailed(ctx, c.Name, err)
		return false
	}
	w.allocated[c.Name] = allocation{id: st.ID, resources: *c.Resources.DeepCopy()}
	w.lg.Debug("container started", "container", c.Name)
	w.event(c.Name, corev1.EventTypeNormal, EventCreated, "Created container %s", c.Name)
	w.event(c.Name, corev1.EventTypeNormal, EventStarted, "Started container %s", c.Name)
	w.clear(c.Name)
	w.postStart(ctx, c, rs.IP)
	return true
}

func (w *worker) startFailed(ctx context.Context, name string, err error) {
	switch {
	case ctx.Err() != nil || w.startCtx.Err() != nil:
	case errors.Is(err, runtime.ErrImagePull):
		w.fail(name, reasonErrImagePull, err)
	case errors.Is(err, runtime.ErrImageNeverPull):
		w.fail(name, reasonErrImageNeverPull, err)
	case errors.Is(err, runtime.ErrSandboxNotReady):
		// The next sync replaces the sandbox.
	case errors.Is(err, runtime.ErrInvalid):
		w.fail(name, reasonConfigError, err)
	default:
		w.fail(name, reasonRunError, err)
	}
}

// fail puts a container in a waiting state and backs off its next start.
// A configuration error does not back off: the ConfigMap or Secret it
// waits for may arrive at any moment, so it is retried at every sync and
// recorded once per distinct message.
func (w *worker) fail(name, reason string, err error) {
	if reason == reasonConfigError {
		if cur := w.waiting[name]; cur == nil || cur.Reason != reason || cur.Message != err.Error() {
			w.lg.Info("container start failed", "container", name, "reason", reason, "err", err)
			w.event(name, corev1.EventTypeWarning, EventFailed, "Error: %v", err)
		}
		w.waiting[name] = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		return
	}
	w.lg.Info("container start failed", "container", name, "reason", reason, "err", err)
	switch reason {
	case reasonErrImagePull, reasonErrImageNeverPull:
		w.event(name, corev1.EventTypeWarning, EventFailed, "Error: %s", reason)
	default:
		w.event(name, corev1.EventTypeWarning, EventFailed, "Error: %v", err)
	}
	w.waiting[name] = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
	w.pull.fail(name, w.m.cfg.Now())
	w.pull.entries[name].message = err.Error()
}
