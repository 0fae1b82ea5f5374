package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

// worker keeps one pod in its desired state. Its goroutine owns every
// field but updates, sent and abortStarts, which belong to the supervisor.
type worker struct {
	m   *Manager
	lg  *slog.Logger
	uid types.UID
	pod *corev1.Pod

	// updates carries the latest desired pod; nil means the pod is no
	// longer desired. Only the supervisor sends, draining first, so a send
	// never blocks and the newest value wins.
	updates chan *corev1.Pod
	sent    *corev1.Pod
	// refreshc (cap 1) asks for a sync because objects the pod may read
	// changed.
	refreshc chan struct{}
	// startCtx bounds image pulls and container starts; abortStarts
	// cancels it once the pod is deleted or no longer desired.
	startCtx    context.Context
	abortStarts context.CancelFunc

	crash, pull *backoff
	waiting     map[string]*corev1.ContainerStateWaiting
	exits       map[string]runtime.ContainerStatus
	probes      map[string]*probeState
	// msgs caches the termination messages of exited attempts.
	msgs      messages
	startTime *metav1.Time
	reported  *corev1.PodStatus
	// failure, once set, fails the pod whatever its containers did.
	failure *podFailure
	// finished is set once the pod reached Succeeded or Failed: its
	// sandbox is stopped and nothing restarts.
	finished bool
	// rejection, set before the worker starts, is why admission refused
	// the pod: nothing of it runs, and it is reported Failed.
	rejection *rejection
	// terminated is set once the deleted pod's removal was reported.
	terminated bool
	// volumesDirty asks the next sync to rewrite the API data volumes:
	// the pod or the objects changed, or a volume could not be written.
	volumesDirty bool
	// volumesSet holds the API data volumes written at least once;
	// volumeErrs the last error of each failing one, reported once.
	volumesSet map[string]bool
	volumeErrs map[string]string
	// allocated holds, by container name, the resources the running
	// attempt was given; resizeErr is why the last resize failed,
	// resizeInfeasible why the node cannot take the pending one.
	allocated        map[string]allocation
	resizeErr        string
	resizeInfeasible string
}

func newWorker(m *Manager, pod *corev1.Pod) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{
		m: m, uid: pod.UID, pod: pod, sent: pod,
		lg:      m.lg.With("pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID),
		updates: make(chan *corev1.Pod, 1), refreshc: make(chan struct{}, 1),
		startCtx: ctx, abortStarts: cancel,
		crash:   newBackoff(m.cfg.BackoffBase, m.cfg.BackoffMax),
		pull:    newBackoff(m.cfg.BackoffBase, m.cfg.BackoffMax),
		waiting: map[string]*corev1.ContainerStateWaiting{}, exits: map[string]runtime.ContainerStatus{},
		probes: map[string]*probeState{}, msgs: messages{},
		volumesDirty: true, volumesSet: map[string]bool{}, volumeErrs: map[string]string{},
		allocated: map[string]allocation{},
		startTime: pod.Status.StartTime,
		reported:  pod.Status.DeepCopy(),
		failure:   failureOf(&pod.Status),
		finished:  pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed,
	}
	if pod.DeletionTimestamp != nil {
		cancel()
	}
	return w
}

// update hands the worker a new desired pod, or nil to remove it. Only the
// supervisor calls it.
func (w *worker) update(p *corev1.Pod) {
	if p != nil && w.sent != nil && p.ResourceVersion != "" && p.ResourceVersion == w.sent.ResourceVersion {
		return
	}
	w.sent = p
	if p == nil || p.DeletionTimestamp != nil {
		w.abortStarts()
	}
	select {
	case <-w.updates:
	default:
	}
	w.updates <- p
}

// refresh asks the worker to bring the pod's volumes up to date with the
// objects they are made from. It does not block.
func (w *worker) refresh() {
	select {
	case w.refreshc <- struct{}{}:
	default:
	}
}

// run syncs the pod until ctx ends or the pod is no longer desired, in
// which case it removes it first.
func (w *worker) run(ctx context.Context) {
	defer w.abortStarts()
	for {
		wait := w.sync(ctx)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case p := <-w.updates:
			timer.Stop()
			if p == nil {
				w.remove(ctx)
				return
			}
			w.pod, w.volumesDirty = p, true
		case <-w.refreshc:
			timer.Stop()
			w.volumesDirty = true
		case <-timer.C:
		}
	}
}

// idle is the wait between syncs of a pod that needs no attention.
const idle = time.Hour

// sync compares the pod with the runtime, acts, reports a changed status
// and returns how long to wait before the next sync.
func (w *worker) sync(ctx context.Context) time.Duration {
	if w.pod.DeletionTimestamp != nil {
		if !w.terminate(ctx) {
			return w.m.cfg.SyncPeriod
		}
		return idle
	}
	if w.rejection != nil {
		w.reject()
		return idle
	}
	rs, err := w.m.cfg.Runtime.PodStatus(ctx, string(w.uid))
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		w.lg.Warn("read pod status", "err", err)
		return w.m.cfg.SyncPeriod
	}
	if w.finished {
		w.report(rs)
		return idle
	}
	if w.startTime == nil {
		t := metav1.NewTime(w.m.cfg.Now().Truncate(time.Second))
		w.startTime = &t
	}
	if w.pastDeadline() {
		w.exceedDeadline(ctx, rs)
		return idle
	}
	if w.tokensDue() {
		w.volumesDirty = true
	}
	if !w.syncVolumes(ctx) {
		// As the kubelet, start nothing before every volume is set up.
		w.report(rs)
		return w.m.cfg.SyncPeriod
	}
	if rs == nil || rs.State != runtime.SandboxReady {
		if w.terminal(rs) {
			w.finish(ctx, rs)
			return idle
		}
		if rs, err = w.runSandbox(ctx); err != nil {
			w.lg.Warn("start sandbox", "err", err)
			if ctx.Err() == nil {
				w.event("", corev1.EventTypeWarning, EventFailedCreatePodSandBox, "Failed to create pod sandbox: %v", err)
			}
			w.report(rs)
			return w.m.cfg.SyncPeriod
		}
	}
	if w.startContainers(ctx, rs) {
		if fresh, err := w.m.cfg.Runtime.PodStatus(ctx, string(w.uid)); err == nil {
			rs = fresh
		}
	}
	if w.resize(ctx, rs) {
		if fresh, err := w.m.cfg.Runtime.PodStatus(ctx, string(w.uid)); err == nil {
			rs = fresh
		}
	}
	st := w.report(rs)
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		w.finish(ctx, rs)
		return idle
	}
	return w.nextSync()
}

// terminal tells whether the runtime's state is already a final phase, so
// a sandbox that went away must not be recreated.
func (w *worker) terminal(rs *runtime.PodStatus) bool {
	if rs == nil || len(rs.Containers) == 0 {
		return false
	}
	st := w.status(rs)
	return st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
}

// finish stops the sandbox of a pod that reached Succeeded or Failed; its
// containers and logs stay until the pod is deleted.
func (w *worker) finish(ctx context.Context, rs *runtime.PodStatus) {
	w.finished = true
	if rs != nil && rs.State == runtime.SandboxReady {
		if err := w.m.cfg.Runtime.StopPod(ctx, string(w.uid), 0); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			w.lg.Warn("stop finished pod", "err", err)
		}
	}
	if fresh, err := w.m.cfg.Runtime.PodStatus(ctx, string(w.uid)); err == nil {
		rs = fresh
	}
	w.report(rs)
	w.lg.Info("pod finished")
}

func (w *worker) runSandbox(ctx context.Context) (*runtime.PodStatus, error) {
	spec, err := w.m.podSpec(w.pod)
	if err != nil {
		return nil, err
	}
	if err := w.m.addTerminationVolume(w.pod, spec); err != nil {
		return nil, err
	}
	return w.m.cfg.Runtime.RunPodSandbox(ctx, spec)
}

// nextSync is the period, or sooner when a back-off ends.
func (w *worker) nextSync() time.Duration {
	d := w.m.cfg.SyncPeriod
	now := w.m.cfg.Now()
	for _, b := range []*backoff{w.crash, w.pull} {
		for _, e := range b.entries {
			if left := e.until.Sub(now); left > 0 && left < d {
				d = left
			}
		}
	}
	return d
}

// grace is the pod's termination grace period.
func (w *worker) grace() time.Duration {
	switch {
	case w.pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*w.pod.DeletionGracePeriodSeconds) * time.Second
	case w.pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*w.pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return defaultGrace
}

// terminate stops a deleted pod gracefully, removes it and reports that it
// is gone; it reports false on failure. Later syncs, which follow changes
// of the pod object, repeat the report in case the first was lost.
func (w *worker) terminate(ctx context.Context) bool {
	if !w.terminated {
		if rs, err := w.m.cfg.Runtime.PodStatus(ctx, string(w.uid)); err == nil {
			w.killingEvents(rs)
			w.stopRunning(ctx, rs, w.grace())
		}
		if err := w.stopAndRemove(ctx, w.grace()); err != nil {
			return false
		}
		if err := w.m.removeVolumes(w.uid); err != nil {
			w.lg.Warn("remove volumes", "err", err)
			return false
		}
		w.terminated = true
		w.lg.Info("pod terminated")
	}
	w.m.cfg.Reporter.PodTerminated(types.NamespacedName{Namespace: w.pod.Namespace, Name: w.pod.Name}, w.uid)
	return true
}

// remove stops and removes a pod that is no longer desired.
func (w *worker) remove(ctx context.Context) {
	if rs, err := w.m.cfg.Runtime.PodStatus(ctx, string(w.uid)); err == nil {
		w.stopRunning(ctx, rs, w.grace())
	}
	if w.stopAndRemove(ctx, w.grace()) != nil {
		return
	}
	if err := w.m.removeVolumes(w.uid); err != nil {
		w.lg.Warn("remove volumes", "err", err)
	}
	w.lg.Info("pod removed")
}

func (w *worker) stopAndRemove(ctx context.Context, grace time.Duration) error {
	err := w.m.cfg.Runtime.StopPod(ctx, string(w.uid), grace)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		w.lg.Warn("stop pod", "err", err)
		return err
	}
	if err := w.m.cfg.Runtime.RemovePod(ctx, string(w.uid)); err != nil {
		w.lg.Warn("remove pod", "err", err)
		return err
	}
	return nil
}

func (w *worker) status(rs *runtime.PodStatus) corev1.PodStatus {
	unready, unstarted := w.unready()
	return computeStatus(statusInput{
		pod: w.pod, rs: rs, waiting: w.waiting, exits: w.exits, unready: unready, unstarted: unstarted, hostIP: w.m.cfg.NodeIP,
		startTime: w.startTime, failure: w.failure, prev: w.reported, now: w.m.cfg.Now(),
		allocated: w.allocated, resizeErr: w.resizeErr, resizeInfeasible: w.resizeInfeasible,
		message: func(c *corev1.Container, rc *runtime.ContainerStatus) string {
			return w.msgs.get(w.m, w.uid, c, rc)
		},
	})
}

// report computes the status and sends it if it changed.
func (w *worker) report(rs *runtime.PodStatus) corev1.PodStatus {
	st := w.status(rs)
	w.msgs.prune(rs, w.exits)
	if w.reported != nil && equality.Semantic.DeepEqual(*w.reported, st) {
		return st
	}
	w.reported = st.DeepCopy()
	w.lg.Debug("pod status", "phase", st.Phase)
	w.m.cfg.Reporter.PodStatus(types.NamespacedName{Namespace: w.pod.Namespace, Name: w.pod.Name}, w.uid, st)
	return st
}

// syncVolumes writes the pod's API data volumes when something they are
// made of may have changed, recording FailedMount for those it cannot
// write. It reports false while a volume has never been set up.
func (w *worker) syncVolumes(ctx context.Context) bool {
	if !w.volumesDirty {
		return true
	}
	objs := w.m.objects()
	ready, failed := true, false
	for i := range w.pod.Spec.Volumes {
		v := &w.pod.Spec.Volumes[i]
		if !isAPIDataVolume(w.pod, v.Name) {
			continue
		}
		changed, err := w.m.setUpVolume(ctx, w.pod, v, objs)
		if err != nil {
			failed = true
			msg := fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", v.Name, err)
			if w.volumeErrs[v.Name] != msg {
				w.lg.Info("volume set up failed", "volume", v.Name, "err", err)
				w.event("", corev1.EventTypeWarning, EventFailedMount, "%s", msg)
				w.volumeErrs[v.Name] = msg
			}
			if !w.volumesSet[v.Name] && !w.m.volumeWritten(w.uid, v.Name) {
				ready = false
			}
			continue
		}
		delete(w.volumeErrs, v.Name)
		w.volumesSet[v.Name] = true
		if changed {
			w.lg.Debug("volume written", "volume", v.Name)
		}
	}
	w.volumesDirty = failed
	return ready
}

// tokensDue tells whether a service account token of the pod is due for
// renewal, so that its volumes are written again. A running pod is
// synced every SyncPeriod, which is when this is checked.
func (w *worker) tokensDue() bool {
	if w.m.tokens == nil {
		return false
	}
	at := w.m.tokens.refreshAt(w.uid)
	return !at.IsZero() && !w.m.cfg.Now().Before(at)
}
