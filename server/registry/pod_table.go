package registry

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeLostReason is the pod status reason the node lifecycle controller
// sets when the pod's node stops responding.
const nodeLostReason = "NodeLost"

var podColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", false),
	column("Status", "string", "The aggregate status of the containers in this pod.", false),
	column("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", false),
	ageColumn(),
	column("IP", "string", corev1.PodStatus{}.SwaggerDoc()["podIP"], true),
	column("Node", "string", corev1.PodSpec{}.SwaggerDoc()["nodeName"], true),
	column("Nominated Node", "string", corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"], true),
	column("Readiness Gates", "string", corev1.PodSpec{}.SwaggerDoc()["readinessGates"], true),
}

func podRow(pod *corev1.Pod, now time.Time) []interface{} {
	s := summarizePod(pod)
	return []interface{}{
		pod.Name,
		fmt.Sprintf("%d/%d", s.ready, s.total),
		s.status,
		s.restartsCell(now),
		since(pod.CreationTimestamp.Time, now),
		orNone(podIP(pod)),
		orNone(pod.Spec.NodeName),
		orNone(pod.Status.NominatedNodeName),
		readinessGates(pod),
	}
}

// podSummary is what kubectl shows of a pod's containers.
type podSummary struct {
	ready, total int
	// status is the STATUS column: the phase, or what holds the pod up.
	status      string
	restarts    int32
	lastRestart time.Time
}

// summarizePod reads the pod's status the way kubectl does: a failing or
// pending init container names the status ("Init:1/2",
// "Init:CrashLoopBackOff"); after that the app container reporting a
// waiting or terminated reason does ("CrashLoopBackOff", "Completed").
// A pod being deleted is Terminating.
func summarizePod(pod *corev1.Pod) podSummary {
	s := podSummary{total: len(pod.Spec.Containers), status: string(pod.Status.Phase)}
	if pod.Status.Reason != "" {
		s.status = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			s.status = corev1.PodReasonSchedulingGated
		}
	}
	sidecars := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
			s.total++
		}
	}
	var side podSummary // restarts of the sidecars alone
	initializing := s.readInitContainers(pod, sidecars, &side)
	if !initializing || hasCondition(pod, corev1.PodInitialized) {
		s.restarts, s.lastRestart = side.restarts, side.lastRestart
		s.readAppContainers(pod)
	}
	if pod.DeletionTimestamp != nil {
		switch {
		case pod.Status.Reason == nodeLostReason:
			s.status = "Unknown"
		case !terminalPhase(pod.Status.Phase):
			s.status = "Terminating"
		}
	}
	return s
}

// readInitContainers counts init container restarts and sets the status
// from the first init container that has not finished. It reports
// whether the pod is still initializing. side collects the restarts of
// sidecar (restartable) init containers.
func (s *podSummary) readInitContainers(pod *corev1.Pod, sidecars map[string]bool, side *podSummary) bool {
	for i, st := range pod.Status.InitContainerStatuses {
		s.countRestarts(st)
		if sidecars[st.Name] {
			side.countRestarts(st)
		}
		term := st.State.Terminated
		switch {
		case term != nil && term.ExitCode == 0:
			continue
		case sidecars[st.Name] && st.Started != nil && *st.Started:
			if st.Ready {
				s.ready++
			}
			continue
		case term != nil:
			s.status = "Init:" + terminatedReason(term)
		case st.State.Waiting != nil && st.State.Waiting.Reason != "" && st.State.Waiting.Reason != "PodInitializing":
			s.status = "Init:" + st.State.Waiting.Reason
		default:
			s.status = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		return true
	}
	return false
}

// readAppContainers counts ready containers and restarts; the first
// container (in spec order) with a waiting or terminated reason sets the
// status.
func (s *podSummary) readAppContainers(pod *corev1.Pod) {
	running := false
	sts := pod.Status.ContainerStatuses
	for i := len(sts) - 1; i >= 0; i-- {
		st := sts[i]
		s.countRestarts(st)
		switch {
		case st.State.Waiting != nil && st.State.Waiting.Reason != "":
			s.status = st.State.Waiting.Reason
		case st.State.Terminated != nil:
			s.status = terminatedReason(st.State.Terminated)
		case st.Ready && st.State.Running != nil:
			running = true
			s.ready++
		}
	}
	// A pod whose finished containers say Completed while others still
	// run is not complete.
	if s.status == "Completed" && running {
		s.status = "NotReady"
		if hasCondition(pod, corev1.PodReady) {
			s.status = "Running"
		}
	}
}

func (s *podSummary) countRestarts(st corev1.ContainerStatus) {
	s.restarts += st.RestartCount
	if t := st.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(s.lastRestart) {
		s.lastRestart = t.FinishedAt.Time
	}
}

// restartsCell prints the restart count, with how long ago the last
// restart was when known: "3 (5m ago)".
func (s *podSummary) restartsCell(now time.Time) string {
	n := strconv.Itoa(int(s.restarts))
	if s.restarts == 0 || s.lastRestart.IsZero() {
		return n
	}
	return fmt.Sprintf("%s (%s ago)", n, since(s.lastRestart, now))
}

// terminatedReason is a terminated container's reason, or its signal or
// exit code when it gave none.
func terminatedReason(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	}
	return fmt.Sprintf("ExitCode:%d", t.ExitCode)
}

// hasCondition reports whether the pod's condition typ is True.
func hasCondition(pod *corev1.Pod, typ corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readinessGates prints how many of the pod's readiness gates are true:
// "1/2", or <none> without gates.
func readinessGates(pod *corev1.Pod) string {
	if len(pod.Spec.ReadinessGates) == 0 {
		return none
	}
	n := 0
	for _, g := range pod.Spec.ReadinessGates {
		if hasCondition(pod, g.ConditionType) {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(pod.Spec.ReadinessGates))
}
