package pods

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

// EventReporter is an optional Reporter ability: receiving the events a
// pod's worker records, as the kubelet records them (Pulling, Pulled,
// Created, Started, Killing, BackOff, Failed, Unhealthy). The agent sends
// them to the server, which writes core/v1 Events about the pod. PodEvent
// must be safe for concurrent use and must not block.
type EventReporter interface {
	PodEvent(pod types.NamespacedName, uid types.UID, ev Event)
}

// Event is one occurrence of something a worker did or saw.
type Event struct {
	// FieldPath is "spec.containers{NAME}" or "spec.initContainers{NAME}"
	// for a container, empty for the pod.
	FieldPath string
	// Type is corev1.EventTypeNormal or corev1.EventTypeWarning.
	Type    string
	Reason  string
	Message string
	Time    time.Time
}

// Event reasons, as the kubelet's.
const (
	EventPulling           = "Pulling"
	EventPulled            = "Pulled"
	EventCreated           = "Created"
	EventStarted           = "Started"
	EventKilling           = "Killing"
	EventBackOff           = "BackOff"
	EventFailed            = "Failed"
	EventUnhealthy         = "Unhealthy"
	EventErrImageNeverPull = "ErrImageNeverPull"

	EventFailedCreatePodSandBox = "FailedCreatePodSandBox"
)

// fieldPath names container name of pod as the kubelet does.
func fieldPath(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return "spec.initContainers{" + name + "}"
		}
	}
	if isEphemeral(pod, name) {
		return "spec.ephemeralContainers{" + name + "}"
	}
	return "spec.containers{" + name + "}"
}

// podEvent records an event about pod, if the reporter takes events.
func (m *Manager) podEvent(pod *corev1.Pod, eventType, reason, message string) {
	if er, ok := m.cfg.Reporter.(EventReporter); ok {
		ev := Event{Type: eventType, Reason: reason, Message: message, Time: m.cfg.Now()}
		er.PodEvent(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, pod.UID, ev)
	}
}

// event records an event about container (or the pod when container is
// empty), if the reporter takes events.
func (w *worker) event(container, eventType, reason, format string, args ...any) {
	er, ok := w.m.cfg.Reporter.(EventReporter)
	if !ok {
		return
	}
	ev := Event{Type: eventType, Reason: reason, Message: fmt.Sprintf(format, args...), Time: w.m.cfg.Now()}
	if container != "" {
		ev.FieldPath = fieldPath(w.pod, container)
	}
	er.PodEvent(types.NamespacedName{Namespace: w.pod.Namespace, Name: w.pod.Name}, w.uid, ev)
}

// pullImage makes c's image present as its pull policy says, recording
// Pulling and Pulled (or Failed) as the kubelet does, with the
// credentials of auth, when the runtime
// can pull on its own; otherwise StartContainer pulls without events. Its
// errors are StartContainer's (ErrImagePull, ErrImageNeverPull).
func (w *worker) pullImage(ctx context.Context, c *corev1.Container, auth []runtime.RegistryAuth) error {
	im, ok := w.m.cfg.Runtime.(runtime.Images)
	if !ok {
		return nil
	}
	if _, events := w.m.cfg.Reporter.(EventReporter); !events {
		return nil
	}
	policy := runtime.PullPolicy(c.ImagePullPolicy)
	if policy != runtime.PullAlways {
		err := im.Pull(ctx, c.Image, runtime.PullNever)
		switch {
		case err == nil:
			w.event(c.Name, corev1.EventTypeNormal, EventPulled, "Container image %q already present on machine", c.Image)
			return nil
		case !errors.Is(err, runtime.ErrImageNeverPull):
			return err
		case policy == runtime.PullNever:
			w.event(c.Name, corev1.EventTypeWarning, EventErrImageNeverPull, "Container image %q is not present with pull policy of Never", c.Image)
			return err
		}
	}
	w.event(c.Name, corev1.EventTypeNormal, EventPulling, "Pulling image %q", c.Image)
	start := w.m.cfg.Now()
	if err := im.Pull(ctx, c.Image, policy, auth...); err != nil {
		if ctx.Err() == nil {
			w.event(c.Name, corev1.EventTypeWarning, EventFailed, "Failed to pull image %q: %v", c.Image, err)
		}
		return err
	}
	w.event(c.Name, corev1.EventTypeNormal, EventPulled, "Successfully pulled image %q in %v", c.Image, w.m.cfg.Now().Sub(start).Round(time.Millisecond))
	return nil
}

// killingEvents records Killing for every container of rs that runs.
func (w *worker) killingEvents(rs *runtime.PodStatus) {
	if rs == nil {
		return
	}
	for _, c := range rs.Containers {
		if c.State == runtime.ContainerRunning {
			w.event(c.Name, corev1.EventTypeNormal, EventKilling, "Stopping container %s", c.Name)
		}
	}
}
