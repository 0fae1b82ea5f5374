package pods

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/runtime"
)

// Waiting reasons, as the kubelet reports them.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonPodInitializing   = "PodInitializing"
	reasonCrashLoopBackOff  = "CrashLoopBackOff"
	reasonErrImagePull      = "ErrImagePull"
	reasonImagePullBackOff  = "ImagePullBackOff"
	reasonErrImageNeverPull = "ErrImageNeverPull"
	reasonConfigError       = "CreateContainerConfigError"
	reasonRunError          = "RunContainerError"
)

// statusInput is everything a pod's status is computed from.
type statusInput struct {
	pod *corev1.Pod
	// rs is the runtime's view; nil while the pod has no sandbox.
	rs *runtime.PodStatus
	// waiting overrides the state of containers that are not running:
	// back-offs and start errors.
	waiting map[string]*corev1.ContainerStateWaiting
	// exits holds the latest exited attempt seen of each container, for
	// lastState.
	exits map[string]runtime.ContainerStatus
	// unready holds running containers whose startup or readiness probe
	// has not passed, unstarted those whose startup probe has not.
	unready, unstarted map[string]bool
	hostIP             string
	startTime          *metav1.Time
	// failure, when set, fails the pod with its reason and message.
	failure *podFailure
	// prev is the status last reported, for condition transition times.
	prev *corev1.PodStatus
	now  time.Time
	// message returns the termination message of an exited attempt; nil
	// reports none.
	message func(c *corev1.Container, rc *runtime.ContainerStatus) string
	// allocated holds the resources given to running attempts, by
	// container name; resizeErr, when set, is why a resize failed, and
	// resizeInfeasible why the node cannot take one.
	allocated                   map[string]allocation
	resizeErr, resizeInfeasible string
}

// computeStatus derives a pod's status as the kubelet does.
func computeStatus(in statusInput) corev1.PodStatus {
	pod := in.pod
	st := corev1.PodStatus{
		ObservedGeneration: pod.Generation,
		StartTime:          in.startTime,
		QOSClass:           pod.Status.QOSClass,
	}
	if in.hostIP != "" {
		st.HostIP = in.hostIP
		st.HostIPs = []corev1.HostIP{{IP: in.hostIP}}
	}
	if in.rs != nil && in.rs.IP != "" {
		st.PodIP = in.rs.IP
		st.PodIPs = []corev1.PodIP{{IP: in.rs.IP}}
	}
	initDone := true
	var inits []corev1.ContainerStatus // of the init containers that run to completion
	// Once the app containers exist, initialization is over: a sidecar
	// that restarts or was stopped with the pod does not undo it.
	appCreated := false
	for i := range pod.Spec.Containers {
		appCreated = appCreated || in.rs != nil && in.rs.Container(pod.Spec.Containers[i].Name) != nil
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := containerStatus(in, c, true)
		if isSidecar(c) {
			// A sidecar counts as initialized once it runs and has
			// started; its readiness is the pod's as an app container's.
			initDone = initDone && (appCreated || cs.State.Running != nil && *cs.Started)
		} else {
			cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
			initDone = initDone && cs.Ready
			inits = append(inits, cs)
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	for i := range pod.Spec.Containers {
		cs := containerStatus(in, &pod.Spec.Containers[i], !initDone)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	ecs := ephemeralContainers(pod)
	for i := range ecs {
		cs := containerStatus(in, &ecs[i], !initDone)
		cs.Resources, cs.AllocatedResources = nil, nil // not part of the pod's resources
		st.EphemeralContainerStatuses = append(st.EphemeralContainerStatuses, cs)
	}
	st.Phase = phase(pod.Spec.RestartPolicy, inits, st.ContainerStatuses, initDone)
	if f := in.failure; f != nil {
		st.Phase, st.Reason, st.Message = corev1.PodFailed, f.reason, f.message
	}
	st.Conditions = conditions(in, &st, initDone)
	return st
}

// containerStatus reports one container. pending marks containers that
// cannot start yet because init containers run before them.
func containerStatus(in statusInput, c *corev1.Container, pending bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image)}
	var rc *runtime.ContainerStatus
	if in.rs != nil {
		rc = in.rs.Container(c.Name)
	}
	w := in.waiting[c.Name]
	if rc == nil {
		if w == nil {
			w = &corev1.ContainerStateWaiting{Reason: reasonContainerCreating}
			if pending {
				w.Reason = reasonPodInitializing
			}
		}
		cs.State.Waiting = w
		return cs
	}
	cs.ContainerID = "containerd://" + rc.ID
	res := c.Resources
	if a, ok := in.allocated[c.Name]; ok && a.id == rc.ID {
		res = a.resources
	}
	cs.Resources, cs.AllocatedResources = res.DeepCopy(), res.Requests.DeepCopy()
	if rc.Image != "" {
		cs.Image, cs.ImageID = rc.Image, imageID(rc.Image)
	}
	cs.RestartCount = int32(rc.Attempt)
	if prev, ok := in.exits[c.Name]; ok && prev.Attempt < rc.Attempt {
		cs.LastTerminationState.Terminated = in.terminated(c, &prev)
	}
	switch rc.State {
	case runtime.ContainerRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(rc.StartedAt)}
		cs.Ready, cs.Started = !in.unready[c.Name], ptr(!in.unstarted[c.Name])
	case runtime.ContainerExited, runtime.ContainerUnknown:
		if w != nil {
			cs.State.Waiting = w
			cs.LastTerminationState.Terminated = in.terminated(c, rc)
		} else {
			cs.State.Terminated = in.terminated(c, rc)
		}
		cs.Started = ptr(false)
	default:
		if w == nil {
			w = &corev1.ContainerStateWaiting{Reason: reasonContainerCreating}
		}
		cs.State.Waiting = w
		cs.Started = ptr(false)
	}
	return cs
}

// terminated reports an exited attempt of c with its termination message.
func (in statusInput) terminated(c *corev1.Container, rc *runtime.ContainerStatus) *corev1.ContainerStateTerminated {
	t := terminated(rc)
	if in.message != nil {
		t.Message = in.message(c, rc)
	}
	return t
}

func terminated(rc *runtime.ContainerStatus) *corev1.ContainerStateTerminated {
	reason := rc.Reason
	if reason == "" {
		reason = "Error"
		if rc.ExitCode == 0 {
			reason = "Completed"
		}
		if rc.State == runtime.ContainerUnknown {
			reason = "Unknown"
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: int32(rc.ExitCode), Reason: reason,
		StartedAt: metav1.NewTime(rc.StartedAt), FinishedAt: metav1.NewTime(rc.FinishedAt),
		ContainerID: "containerd://" + rc.ID,
	}
}

func imageID(image string) string {
	if n, err := runtime.NormalizeImage(image); err == nil {
		return n
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

// phase follows the kubelet: Pending until init containers have completed
// and every container has run; Running while any runs or will restart;
// Succeeded or Failed once every container has stopped for good.
func phase(policy corev1.RestartPolicy, inits, ctrs []corev1.ContainerStatus, initDone bool) corev1.PodPhase {
	for _, cs := range inits {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && policy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
	}
	if !initDone {
		return corev1.PodPending
	}
	var running, stopped, succeeded, waiting int
	for _, cs := range ctrs {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.LastTerminationState.Terminated != nil:
			stopped++ // waiting to restart after having run
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case policy == corev1.RestartPolicyAlways || policy == "":
		return corev1.PodRunning
	case stopped == succeeded:
		return corev1.PodSucceeded
	case policy == corev1.RestartPolicyNever:
		return corev1.PodFailed
	}
	return corev1.PodRunning
}

// conditions computes the pod's conditions, keeping the transition time of
// each whose status has not changed since prev.
func conditions(in statusInput, st *corev1.PodStatus, initDone bool) []corev1.PodCondition {
	sandbox := in.rs != nil && in.rs.State == runtime.SandboxReady
	var notReady, notInit []string
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			notReady = append(notReady, cs.Name)
		}
	}
	for i, cs := range st.InitContainerStatuses {
		if !cs.Ready {
			notInit = append(notInit, cs.Name)
			if isSidecar(&in.pod.Spec.InitContainers[i]) {
				notReady = append(notReady, cs.Name)
			}
		}
	}
	ready := cond(corev1.ContainersReady, len(notReady) == 0 && initDone, "ContainersNotReady",
		fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " ")))
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		ready = cond(corev1.ContainersReady, false, "PodCompleted", "")
	}
	podReady := ready
	podReady.Type = corev1.PodReady
	out := []corev1.PodCondition{
		cond("PodReadyToStartContainers", sandbox, "", ""),
		cond(corev1.PodInitialized, initDone, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInit, " "))),
		podReady,
		ready,
		scheduled(in.pod),
	}
	if in.resizeInfeasible != "" {
		out = append(out, corev1.PodCondition{Type: corev1.PodResizePending, Status: corev1.ConditionTrue,
			Reason: corev1.PodReasonInfeasible, Message: in.resizeInfeasible})
	}
	if in.resizeErr != "" {
		out = append(out, corev1.PodCondition{Type: corev1.PodResizeInProgress, Status: corev1.ConditionTrue,
			Reason: corev1.PodReasonError, Message: in.resizeErr})
	}
	if initDone && len(in.pod.Spec.InitContainers) > 0 {
		out[1].Reason, out[1].Message = "", ""
	}
	for i := range out {
		out[i].LastTransitionTime = transitionTime(in.prev, out[i], in.now)
		out[i].ObservedGeneration = in.pod.Generation
	}
	return out
}

func cond(typ corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
	if ok {
		return corev1.PodCondition{Type: typ, Status: corev1.ConditionTrue}
	}
	return corev1.PodCondition{Type: typ, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
}

// scheduled keeps the PodScheduled condition the scheduler wrote.
func scheduled(pod *corev1.Pod) corev1.PodCondition {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c
		}
	}
	return corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}
}

func transitionTime(prev *corev1.PodStatus, c corev1.PodCondition, now time.Time) metav1.Time {
	if prev != nil {
		for _, p := range prev.Conditions {
			if p.Type == c.Type && p.Status == c.Status && !p.LastTransitionTime.IsZero() {
				return p.LastTransitionTime
			}
		}
	}
	if !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime
	}
	return metav1.NewTime(now.Truncate(time.Second))
}
