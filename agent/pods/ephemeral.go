package pods

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// ephemeralContainers returns the pod's ephemeral containers as
// containers (the two types have the same fields). The slice is new; the
// containers' pointer fields are shared with the pod.
func ephemeralContainers(pod *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.EphemeralContainers {
		out[i] = corev1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
	}
	return out
}

// isEphemeral tells whether name is one of the pod's ephemeral containers.
func isEphemeral(pod *corev1.Pod, name string) bool {
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return true
		}
	}
	return false
}

// ephemeralTarget is the container whose process namespace the ephemeral
// container name joins (its targetContainerName), "" for none.
func ephemeralTarget(pod *corev1.Pod, name string) string {
	for i := range pod.Spec.EphemeralContainers {
		if ec := &pod.Spec.EphemeralContainers[i]; ec.Name == name {
			return ec.TargetContainerName
		}
	}
	return ""
}

// startEphemeral starts each ephemeral container of a pod whose app
// containers run, once: as in Kubernetes, one that exits is not started
// again, and none is probed. They join the pod's sandbox, sharing its
// network, IPC and UTS namespaces, and the process namespace of their
// target container if they name one. It reports whether it started one.
func (w *worker) startEphemeral(ctx context.Context, rs *runtime.PodStatus) bool {
	if len(w.pod.Spec.EphemeralContainers) == 0 || !w.initialized(rs) {
		return false
	}
	started := false
	ecs := ephemeralContainers(w.pod)
	for i := range ecs {
		c := &ecs[i]
		switch rc := rs.Container(c.Name); {
		case rc == nil:
			started = w.start(ctx, c, rs) || started
		case rc.State == runtime.ContainerExited:
			w.exited(rc)
		}
	}
	return started
}
