package pods

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

func resources(reqs, lims map[corev1.ResourceName]string) corev1.ResourceRequirements {
	var r corev1.ResourceRequirements
	for name, q := range reqs {
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[name] = resource.MustParse(q)
	}
	for name, q := range lims {
		if r.Limits == nil {
			r.Limits = corev1.ResourceList{}
		}
		r.Limits[name] = resource.MustParse(q)
	}
	return r
}

// resizePod has c0, resized in place, and c1, whose memory resize policy
// restarts it.
func resizePod(name string) *corev1.Pod {
	pod := newPod(name, "", "")
	pod.Generation = 1
	pod.Spec.Containers[0].Resources = resources(
		map[corev1.ResourceName]string{"cpu": "20m", "memory": "35Mi"},
		map[corev1.ResourceName]string{"memory": "45Mi"})
	pod.Spec.Containers[1].Resources = resources(
		map[corev1.ResourceName]string{"memory": "35Mi"}, map[corev1.ResourceName]string{"memory": "45Mi"})
	pod.Spec.Containers[1].ResizePolicy = []corev1.ContainerResizePolicy{
		{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer},
	}
	return pod
}

func resized(pod *corev1.Pod) *corev1.Pod {
	p := bump(pod)
	p.Generation++
	p.Spec.Containers[0].Resources = resources(
		map[corev1.ResourceName]string{"cpu": "25m", "memory": "30Mi"},
		map[corev1.ResourceName]string{"cpu": "35m", "memory": "50Mi"})
	p.Spec.Containers[1].Resources = resources(
		map[corev1.ResourceName]string{"memory": "40Mi"}, map[corev1.ResourceName]string{"memory": "50Mi"})
	return p
}

func statusResources(st corev1.PodStatus, name string) (corev1.ResourceRequirements, corev1.ResourceList, int32) {
	for _, cs := range st.ContainerStatuses {
		if cs.Name == name && cs.Resources != nil {
			return *cs.Resources, cs.AllocatedResources, cs.RestartCount
		}
	}
	return corev1.ResourceRequirements{}, nil, -1
}

func TestResizeInPlace(t *testing.T) {
	pod := resizePod("resize")
	h := start(t, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	for _, c := range pod.Spec.Containers {
		got, alloc, _ := statusResources(st, c.Name)
		if diff := cmp.Diff(c.Resources, got); diff != "" {
			t.Errorf("status resources of %s before the resize (-want +got):\n%s", c.Name, diff)
		}
		if diff := cmp.Diff(c.Resources.Requests, alloc); diff != "" {
			t.Errorf("allocated resources of %s before the resize (-want +got):\n%s", c.Name, diff)
		}
	}

	want := resized(pod)
	h.m.SetPods([]*corev1.Pod{want})
	st = h.rep.waitStatus(t, pod.UID, wait, "the new resources", func(st corev1.PodStatus) bool {
		_, _, restarts := statusResources(st, "c1")
		got, _, _ := statusResources(st, "c0")
		return st.ObservedGeneration == want.Generation && restarts == 1 &&
			cmp.Equal(got.Limits, want.Spec.Containers[0].Resources.Limits)
	})
	for _, c := range want.Spec.Containers {
		got, alloc, _ := statusResources(st, c.Name)
		if diff := cmp.Diff(c.Resources, got); diff != "" {
			t.Errorf("status resources of %s after the resize (-want +got):\n%s", c.Name, diff)
		}
		if diff := cmp.Diff(c.Resources.Requests, alloc); diff != "" {
			t.Errorf("allocated resources of %s after the resize (-want +got):\n%s", c.Name, diff)
		}
	}
	if _, _, restarts := statusResources(st, "c0"); restarts != 0 {
		t.Errorf("c0 restarted %d times; a NotRequired resize keeps it running", restarts)
	}
	wantRuntime := map[string]runtime.Resources{
		"c0": {CPURequestMilli: 25, CPULimitMilli: 35, MemoryLimitBytes: 50 << 20},
		"c1": {MemoryLimitBytes: 50 << 20},
	}
	for name, w := range wantRuntime {
		if got := h.fake.ContainerSpec(string(pod.UID), name).Resources; got != w {
			t.Errorf("runtime resources of %s = %+v, want %+v", name, got, w)
		}
	}
	for _, c := range st.Conditions {
		if c.Type == corev1.PodResizeInProgress || c.Type == corev1.PodResizePending {
			t.Errorf("condition %s after a finished resize", c.Type)
		}
	}
}

// failingResizer is a runtime whose containers cannot be resized.
type failingResizer struct{ *runtimetest.Fake }

var errNoResize = errors.New("cgroup update refused")

func (failingResizer) ResizeContainer(context.Context, string, string, runtime.Resources) error {
	return errNoResize
}

func TestResizeFailureReported(t *testing.T) {
	pod := resizePod("noresize")
	h := start(t, Config{Runtime: failingResizer{fakeRuntime()}}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))

	want := resized(pod)
	h.m.SetPods([]*corev1.Pod{want})
	st := h.rep.waitStatus(t, pod.UID, wait, "a resize in progress", func(st corev1.PodStatus) bool {
		return condition(st, corev1.PodResizeInProgress) == corev1.ConditionTrue
	})
	for _, c := range st.Conditions {
		if c.Type == corev1.PodResizeInProgress && c.Reason != corev1.PodReasonError {
			t.Errorf("PodResizeInProgress reason %q, want %q", c.Reason, corev1.PodReasonError)
		}
	}
	got, _, _ := statusResources(st, "c0")
	if diff := cmp.Diff(pod.Spec.Containers[0].Resources, got); diff != "" {
		t.Errorf("status resources of c0 after a failed resize, want the old ones (-want +got):\n%s", diff)
	}
}

// A resize asking more than the node has waits, reported Infeasible, and
// the containers keep what they had.
func TestResizeInfeasible(t *testing.T) {
	pod := resizePod("infeasible")
	h := start(t, Config{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi"),
	}}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))

	want := resized(pod)
	want.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("2")
	want.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("2")
	h.m.SetPods([]*corev1.Pod{want})
	st := h.rep.waitStatus(t, pod.UID, wait, "a pending resize", func(st corev1.PodStatus) bool {
		return condition(st, corev1.PodResizePending) == corev1.ConditionTrue
	})
	for _, c := range st.Conditions {
		if c.Type == corev1.PodResizePending && (c.Reason != corev1.PodReasonInfeasible || !strings.Contains(c.Message, "cpu")) {
			t.Errorf("PodResizePending %q: %q, want %q naming cpu", c.Reason, c.Message, corev1.PodReasonInfeasible)
		}
	}
	for _, c := range pod.Spec.Containers {
		got, _, restarts := statusResources(st, c.Name)
		if diff := cmp.Diff(c.Resources, got); diff != "" {
			t.Errorf("status resources of %s after an infeasible resize, want the old ones (-want +got):\n%s", c.Name, diff)
		}
		if restarts != 0 {
			t.Errorf("%s restarted %d times by an infeasible resize", c.Name, restarts)
		}
	}
	if got := h.fake.ContainerSpec(string(pod.UID), "c0").Resources; got.CPURequestMilli != 20 {
		t.Errorf("runtime resources of c0 = %+v, want the cpu request 20m kept", got)
	}
}
