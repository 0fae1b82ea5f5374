package pods

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik-dev/minik/runtime/runtimetest"
)

// waitEvents waits until uid's events, in order, contain a subsequence
// matching the patterns (regular expressions on "FieldPath Type Reason:
// Message").
func (r *recorder) waitEvents(t *testing.T, uid types.UID, patterns ...string) []string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := r.eventsOf(uid)
		i := 0
		for _, ev := range got {
			if i < len(patterns) && regexp.MustCompile(patterns[i]).MatchString(ev) {
				i++
			}
		}
		if i == len(patterns) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: events\n  %s\nwant, in order, matches of\n  %s", uid, strings.Join(got, "\n  "), strings.Join(patterns, "\n  "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventsStartAndKill(t *testing.T) {
	pod := newPod("ev", "", "")
	h := start(t, Config{}, pod)
	h.rep.waitEvents(t, pod.UID,
		`^spec.containers\{c0\} Normal Pulled: Container image "docker.io/minik/busybox:test" already present on machine$`,
		`^spec.containers\{c0\} Normal Created: Created container c0$`,
		`^spec.containers\{c0\} Normal Started: Started container c0$`,
	)
	h.rep.waitEvents(t, pod.UID, `^spec.containers\{c1\} Normal Started: Started container c1$`)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	del := bump(pod)
	now := metav1.Now()
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, ptr(int64(1))
	h.m.SetPods([]*corev1.Pod{del})
	got := h.rep.waitEvents(t, pod.UID, `^spec.containers\{c0\} Normal Killing: Stopping container c0$`)
	if !slices.Contains(got, "spec.containers{c1} Normal Killing: Stopping container c1") {
		t.Errorf("no Killing for c1 in %q", got)
	}
	for _, ev := range got {
		if strings.Contains(ev, "Warning") {
			t.Errorf("warning event for a healthy pod: %q", ev)
		}
	}
}

func TestEventsPull(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   corev1.PullPolicy
		present  bool
		pullable bool
		want     []string
	}{
		{"pulled when missing", corev1.PullIfNotPresent, false, true, []string{
			`Normal Pulling: Pulling image "example.com/app:1"$`,
			`Normal Pulled: Successfully pulled image "example.com/app:1" in \S+$`,
			`Normal Started: `,
		}},
		{"always pulls", corev1.PullAlways, true, true, []string{
			`Normal Pulling: Pulling image "example.com/app:1"$`,
			`Normal Pulled: Successfully pulled image "example.com/app:1" in \S+$`,
			`Normal Started: `,
		}},
		{"pull fails, backs off", corev1.PullIfNotPresent, false, false, []string{
			`Normal Pulling: Pulling image "example.com/app:1"$`,
			`Warning Failed: Failed to pull image "example.com/app:1": .*not found`,
			`Warning Failed: Error: ErrImagePull$`,
			`Normal BackOff: Back-off pulling image "example.com/app:1"$`,
			`Warning Failed: Error: ImagePullBackOff$`,
		}},
		{"never pulled", corev1.PullNever, false, true, []string{
			`Warning ErrImageNeverPull: Container image "example.com/app:1" is not present with pull policy of Never$`,
			`Warning Failed: Error: ErrImageNeverPull$`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := runtimetest.NewFake()
			if tc.present {
				fake.AddImage("example.com/app:1")
			}
			if tc.pullable {
				fake.Pullable("example.com/app:1")
			}
			pod := newPod("pull", "")
			pod.Spec.Containers[0].Image = "example.com/app:1"
			pod.Spec.Containers[0].ImagePullPolicy = tc.policy
			h := start(t, Config{Runtime: fake, BackoffBase: 50 * time.Millisecond}, pod)
			for i := range tc.want {
				tc.want[i] = `^spec.containers\{c0\} ` + tc.want[i]
			}
			h.rep.waitEvents(t, pod.UID, tc.want...)
		})
	}
}

func TestEventsCrashLoopBackOff(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	pod := newPod("crash", "exit 1")
	h := start(t, Config{Now: clk.Now}, pod)
	backOff := fmt.Sprintf(`^spec.containers\{c0\} Warning BackOff: Back-off restarting failed container c0 in pod crash_ns\(%s\)$`, pod.UID)
	h.rep.waitEvents(t, pod.UID, `Normal Started: Started container c0$`, `Normal Started: Started container c0$`, backOff)
	// One BackOff per back-off period, however many syncs it lasts.
	time.Sleep(100 * time.Millisecond)
	n := 0
	for _, ev := range h.rep.eventsOf(pod.UID) {
		if strings.Contains(ev, "BackOff") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d BackOff events during one back-off, want 1", n)
	}
	clk.Add(15 * time.Second)
	h.rep.waitEvents(t, pod.UID, backOff, `Normal Started: `, backOff)
}

func TestEventsLivenessProbe(t *testing.T) {
	pod := newPod("live", "")
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
			Host: "127.0.0.1", Port: intstr.FromInt32(1), // nothing listens on port 1
		}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	pod.Spec.Containers[0].ReadinessProbe = pod.Spec.Containers[0].LivenessProbe.DeepCopy()
	h := start(t, Config{}, pod)
	h.rep.waitEvents(t, pod.UID,
		`^spec.containers\{c0\} Warning Unhealthy: Readiness probe failed: .*127.0.0.1:1`,
		`^spec.containers\{c0\} Warning Unhealthy: Liveness probe failed: .*127.0.0.1:1`,
		`^spec.containers\{c0\} Normal Killing: Container c0 failed liveness probe, will be restarted$`,
	)
}

func TestEventsInitContainerFieldPath(t *testing.T) {
	pod := newPod("init", "")
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: testImage, Command: []string{"sh", "-c", "exit 0"}}}
	h := start(t, Config{}, pod)
	h.rep.waitEvents(t, pod.UID,
		`^spec.initContainers\{setup\} Normal Started: Started container setup$`,
		`^spec.containers\{c0\} Normal Started: Started container c0$`,
	)
}
