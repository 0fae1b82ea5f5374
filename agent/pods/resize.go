package pods

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/minik-dev/minik/runtime"
)

// allocation is what one attempt of a container was given of its
// requests and limits.
type allocation struct {
	id        string // the attempt's container ID
	resources corev1.ResourceRequirements
}

// resize brings the running app and sidecar containers to the resources
// of the pod's spec, as the kubelet does for an in-place resize: the
// cgroup of a container is updated while it runs, unless a changed
// resource's resize policy is RestartContainer, which restarts it. It
// records what each was given, and why a resize failed, for the status;
// it reports whether it restarted a container.
func (w *worker) resize(ctx context.Context, rs *runtime.PodStatus) bool {
	if rs == nil {
		return false
	}
	w.resizeInfeasible, w.resizeErr = "", ""
	if w.resizePending(rs) {
		if w.resizeInfeasible = w.infeasible(); w.resizeInfeasible != "" {
			return false
		}
	}
	var errs []string
	restarted := false
	for _, c := range w.resizable() {
		rc := rs.Container(c.Name)
		if rc == nil || rc.State != runtime.ContainerRunning {
			continue
		}
		a, ok := w.allocated[c.Name]
		current := ok && a.id == rc.ID
		switch {
		case current && equality.Semantic.DeepEqual(a.resources, c.Resources):
			continue
		case current && needsRestart(c, &a.resources):
			w.lg.Info("container resized, restarting it", "container", c.Name)
			w.event(c.Name, corev1.EventTypeNormal, EventKilling, "Container %s resize requires a restart, will be restarted", c.Name)
			if err := w.stopContainer(ctx, c, rs.IP); err != nil {
				errs = append(errs, fmt.Sprintf("restart container %s: %v", c.Name, err))
				continue
			}
			delete(w.probes, c.Name)
			restarted = w.start(ctx, c, rs) || restarted
			continue
		}
		// A container the worker did not start (it ran before the agent
		// restarted) is given its spec's resources too, where the runtime
		// can: an update to the same values changes nothing.
		if err := w.resizeContainer(ctx, c, !current); err != nil {
			errs = append(errs, fmt.Sprintf("resize container %s: %v", c.Name, err))
			continue
		}
		w.allocated[c.Name] = allocation{id: rc.ID, resources: *c.Resources.DeepCopy()}
	}
	w.resizeErr = strings.Join(errs, "; ")
	return restarted
}

// resizePending tells whether a running container's resources differ
// from its spec's.
func (w *worker) resizePending(rs *runtime.PodStatus) bool {
	for _, c := range w.resizable() {
		rc := rs.Container(c.Name)
		if rc == nil || rc.State != runtime.ContainerRunning {
			continue
		}
		if a, ok := w.allocated[c.Name]; ok && a.id == rc.ID && !equality.Semantic.DeepEqual(a.resources, c.Resources) {
			return true
		}
	}
	return false
}

// infeasible tells why the cpu or memory the pod's app and sidecar
// containers request cannot fit the node even were it empty; "" when it
// can. Such a resize waits, as the kubelet's, until the pod is resized
// again.
func (w *worker) infeasible() string {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		capacity, ok := w.m.cfg.Allocatable[name]
		if !ok {
			continue
		}
		var total resource.Quantity
		for _, c := range w.resizable() {
			if q, ok := c.Resources.Requests[name]; ok {
				total.Add(q)
			}
		}
		if total.Cmp(capacity) > 0 {
			return fmt.Sprintf("Node didn't have enough capacity: %s, requested: %s, capacity: %s", name, total.String(), capacity.String())
		}
	}
	return ""
}

// resizable lists the containers an in-place resize applies to: the app
// containers and the sidecars.
func (w *worker) resizable() []*corev1.Container {
	var cs []*corev1.Container
	for i := range w.pod.Spec.InitContainers {
		if c := &w.pod.Spec.InitContainers[i]; isSidecar(c) {
			cs = append(cs, c)
		}
	}
	for i := range w.pod.Spec.Containers {
		cs = append(cs, &w.pod.Spec.Containers[i])
	}
	return cs
}

// resizeContainer gives the running container c its spec's resources. A
// runtime that cannot resize fails it unless optional.
func (w *worker) resizeContainer(ctx context.Context, c *corev1.Container, optional bool) error {
	r, ok := w.m.cfg.Runtime.(runtime.Resizer)
	switch {
	case !ok && optional:
		return nil
	case !ok:
		return fmt.Errorf("the runtime cannot resize containers")
	}
	return r.ResizeContainer(ctx, string(w.uid), c.Name, containerResources(&c.Resources))
}

// needsRestart tells whether a resource of c that changed from old has
// the resize policy RestartContainer.
func needsRestart(c *corev1.Container, old *corev1.ResourceRequirements) bool {
	for _, p := range c.ResizePolicy {
		if p.RestartPolicy != corev1.RestartContainer {
			continue
		}
		if !sameQuantity(c.Resources.Requests, old.Requests, p.ResourceName) ||
			!sameQuantity(c.Resources.Limits, old.Limits, p.ResourceName) {
			return true
		}
	}
	return false
}

func sameQuantity(a, b corev1.ResourceList, name corev1.ResourceName) bool {
	qa, oka := a[name]
	qb, okb := b[name]
	return oka == okb && qa.Cmp(qb) == 0
}
