package pods

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// The reasons and messages of pods the node fails, as the kubelet words
// them.
const (
	reasonDeadlineExceeded  = "DeadlineExceeded"
	messageDeadlineExceeded = "Pod was active on the node longer than the specified deadline"
	reasonSysctlForbidden   = "SysctlForbidden"
)

// podFailure is why the node failed a pod whose containers did not end
// it: it becomes the status's reason and message, with phase Failed.
type podFailure struct {
	reason, message string
}

// failureOf reads back the failure a status reported, so that a worker
// started again keeps reporting it.
func failureOf(st *corev1.PodStatus) *podFailure {
	if st.Phase != corev1.PodFailed || st.Reason == "" {
		return nil
	}
	return &podFailure{reason: st.Reason, message: st.Message}
}

// pastDeadline tells whether the pod has been active on the node for its
// spec.activeDeadlineSeconds, counted from its start time; an update may
// shorten the deadline of a running pod.
func (w *worker) pastDeadline() bool {
	d := w.pod.Spec.ActiveDeadlineSeconds
	if d == nil || w.startTime == nil {
		return false
	}
	return w.m.cfg.Now().Sub(w.startTime.Time) >= time.Duration(*d)*time.Second
}

// exceedDeadline stops the pod's containers with its grace period and
// fails it with reason DeadlineExceeded; nothing restarts afterwards.
func (w *worker) exceedDeadline(ctx context.Context, rs *runtime.PodStatus) {
	w.lg.Info("pod past its active deadline", "activeDeadlineSeconds", *w.pod.Spec.ActiveDeadlineSeconds)
	w.failure = &podFailure{reason: reasonDeadlineExceeded, message: messageDeadlineExceeded}
	w.event("", corev1.EventTypeNormal, reasonDeadlineExceeded, messageDeadlineExceeded)
	w.killingEvents(rs)
	w.stopRunning(ctx, rs, w.grace())
	w.finish(ctx, rs)
}

// forbiddenSysctl names the first sysctl of the pod the node does not
// allow, "" when it allows them all. A pod on the node's network may not
// set the network's: they would be the node's.
func forbiddenSysctl(pod *corev1.Pod) string {
	if psc := pod.Spec.SecurityContext; psc != nil {
		for _, s := range psc.Sysctls {
			name := dottedSysctl(s.Name)
			if !safeSysctls[name] || pod.Spec.HostNetwork && strings.HasPrefix(name, "net.") {
				return s.Name
			}
		}
	}
	return ""
}
