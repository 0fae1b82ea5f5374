package pods

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// hookFake answers exec processes by their first word: the exit code set
// for it, after waiting on its gate if one is set. It records each exec
// with the state the container was in, and each stop with its grace.
type hookFake struct {
	*runtimetest.Fake
	mu    sync.Mutex
	codes map[string]int
	gates map[string]chan struct{}
	execs []string // "cmd container state"
	stops []time.Duration
}

func newHookFake() *hookFake {
	return &hookFake{Fake: fakeRuntime(), codes: map[string]int{}, gates: map[string]chan struct{}{}}
}

func (f *hookFake) Exec(ctx context.Context, uid, ctr string, opts runtime.ExecOptions) (int, error) {
	state := "none"
	if rs, err := f.PodStatus(ctx, uid); err == nil {
		if rc := rs.Container(ctr); rc != nil {
			state = string(rc.State)
		}
	}
	f.mu.Lock()
	f.execs = append(f.execs, opts.Cmd[0]+" "+ctr+" "+state)
	gate, code := f.gates[opts.Cmd[0]], f.codes[opts.Cmd[0]]
	f.mu.Unlock()
	fmt.Fprintf(opts.Stdout, "out of %s", opts.Cmd[0])
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	return code, nil
}

func (f *hookFake) StopContainer(ctx context.Context, uid, name string, grace time.Duration) error {
	f.mu.Lock()
	f.stops = append(f.stops, grace)
	f.mu.Unlock()
	return f.Fake.StopContainer(ctx, uid, name, grace)
}

func (f *hookFake) execLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.execs)
}

func (f *hookFake) stopLog() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stops)
}

func execHook(cmd string) *corev1.LifecycleHandler {
	return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}}
}

func TestPostStartHookBeforeRunning(t *testing.T) {
	fake := newHookFake()
	gate := make(chan struct{})
	fake.gates["started"] = gate
	pod := newPod("poststart", "")
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: execHook("started")}
	h := start(t, Config{Runtime: fake}, pod)
	waitFor(t, wait, "postStart exec", func() bool { return len(fake.execLog()) > 0 })
	if got := fake.execLog(); got[0] != "started c0 Running" {
		t.Fatalf("exec = %q, want the hook run in the running container", got)
	}
	for _, st := range h.rep.all(pod.UID) {
		if cs := st.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
			t.Fatalf("container reported running before its postStart hook returned: %s", describe(st))
		}
	}
	close(gate)
	st := h.rep.waitStatus(t, pod.UID, wait, "Running", readyIs(corev1.ConditionTrue))
	if n := st.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("restartCount = %d after a passing hook", n)
	}
}

func TestPostStartHookFailureKillsAndRestarts(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		want   func(corev1.PodStatus) bool
	}{
		{corev1.RestartPolicyAlways, func(st corev1.PodStatus) bool { return st.ContainerStatuses[0].RestartCount >= 1 }},
		{corev1.RestartPolicyNever, phaseIs(corev1.PodFailed)},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			fake := newHookFake()
			fake.codes["started"] = 2
			pod := newPod("poststartfail", "")
			pod.Spec.RestartPolicy = tc.policy
			pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: execHook("started"), PreStop: execHook("drain")}
			h := start(t, Config{Runtime: fake, BackoffBase: time.Millisecond}, pod)
			st := h.rep.waitStatus(t, pod.UID, wait, "killed after the hook failed", tc.want)
			h.rep.waitEvents(t, pod.UID,
				`^spec.containers\{c0\} Normal Started: Started container c0$`,
				`^spec.containers\{c0\} Warning FailedPostStartHook: Exec lifecycle hook \(\[started\]\) for Container "c0" in Pod "poststartfail_ns\(poststartfail-uid-.\)" failed - error: exit code 2, message: "out of started"$`,
			)
			term := st.ContainerStatuses[0].State.Terminated
			if term == nil {
				term = st.ContainerStatuses[0].LastTerminationState.Terminated
			}
			if term == nil || term.ExitCode != 143 {
				t.Errorf("terminated = %+v, want stopped with SIGTERM (143)", term)
			}
			if got := fake.execLog(); len(got) < 2 || got[1] != "drain c0 Running" {
				t.Errorf("execs = %q, want preStop run before the kill", got)
			}
		})
	}
}

// deletePod marks pod deleted with a grace period of grace seconds.
func deletePod(h *harness, pod *corev1.Pod, grace int64) {
	h.m.SetPods([]*corev1.Pod{markDeleted(bump(pod), grace)})
}

// markDeleted sets p's deletion timestamp and grace period.
func markDeleted(p *corev1.Pod, grace int64) *corev1.Pod {
	now := metav1.Now()
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, ptr(grace)
	return p
}

func TestPreStopHookBeforeStopOnDelete(t *testing.T) {
	for _, code := range []int{0, 1} {
		fake := newHookFake()
		fake.codes["drain"] = code
		pod := newPod("prestop", "", "")
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: execHook("drain")}
		h := start(t, Config{Runtime: fake}, pod)
		h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
		deletePod(h, pod, 30)
		waitFor(t, wait, "termination", func() bool { return h.rep.terminations(pod.UID) > 0 })
		if got := fake.execLog(); !slices.Equal(got, []string{"drain c0 Running"}) {
			t.Errorf("code %d: execs = %q, want one preStop in the running c0", code, got)
		}
		// c0 is stopped after its hook with what is left of 30 s, at
		// least 2 s; c1, without a hook, by StopPod.
		if got := fake.stopLog(); len(got) != 1 || got[0] < minHookGrace || got[0] > 30*time.Second {
			t.Errorf("code %d: stops = %v, want one with the grace left", code, got)
		}
		failed := slices.ContainsFunc(h.rep.eventsOf(pod.UID), func(ev string) bool {
			return strings.Contains(ev, `Warning FailedPreStopHook: Exec lifecycle hook ([drain]) for Container "c0" in Pod "prestop_ns(`) &&
				strings.HasSuffix(ev, `failed - error: exit code 1, message: "out of drain"`)
		})
		if failed != (code != 0) {
			t.Errorf("code %d: FailedPreStopHook recorded = %v; events %q", code, failed, h.rep.eventsOf(pod.UID))
		}
	}
}

func TestPreStopHookBoundedByGrace(t *testing.T) {
	fake := newHookFake()
	fake.gates["drain"] = make(chan struct{}) // never opens
	pod := newPod("prestopslow", "")
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: execHook("drain")}
	h := start(t, Config{Runtime: fake}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	deletePod(h, pod, 1)
	waitFor(t, wait, "termination", func() bool { return h.rep.terminations(pod.UID) > 0 })
	h.rep.waitEvents(t, pod.UID, `Warning FailedPreStopHook: did not complete within the grace period of 1s$`)
	if got := fake.stopLog(); len(got) != 1 || got[0] != minHookGrace {
		t.Errorf("stops = %v, want the minimum grace after the hook used it all", got)
	}
}

func TestPreStopHookOnLivenessFailure(t *testing.T) {
	fake := newHookFake()
	fake.codes["check"] = 1
	pod := newPod("prestoplive", "")
	c := &pod.Spec.Containers[0]
	c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}}, FailureThreshold: 1}
	c.Lifecycle = &corev1.Lifecycle{PreStop: execHook("drain")}
	h := start(t, Config{Runtime: fake, BackoffBase: time.Millisecond}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "restarted", func(st corev1.PodStatus) bool {
		return st.ContainerStatuses[0].RestartCount >= 1
	})
	got := fake.execLog()
	i := slices.Index(got, "check c0 Running")
	if i < 0 || i+1 >= len(got) || got[i+1] != "drain c0 Running" {
		t.Errorf("execs = %q, want preStop in the running container after the failed probe", got)
	}
}

func TestHTTPAndSleepHooks(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/bad" {
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	get := func(path string) *corev1.LifecycleHandler {
		return &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Port: intstr.FromString("web"), Path: path}}
	}
	pod := newPod("httphook", "", "")
	c0, c1 := &pod.Spec.Containers[0], &pod.Spec.Containers[1]
	c0.Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: int32(atoi(t, port))}}
	c0.Lifecycle = &corev1.Lifecycle{PostStart: get("/started"), PreStop: get("/bad")}
	c1.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 0}}}
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "ready", readyIs(corev1.ConditionTrue))
	deletePod(h, pod, 5)
	h.rep.waitEvents(t, pod.UID, `^spec.containers\{c0\} Warning FailedPreStopHook: HTTP lifecycle hook \(/bad\) for Container "c0" in Pod "httphook_ns\(httphook-uid-.\)" failed - error: GET http://127.0.0.1:\d+/bad: 500 Internal Server Error$`)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(paths, []string{"/started", "/bad"}) {
		t.Errorf("requests = %q, want postStart then preStop", paths)
	}
}

func TestCappedBuffer(t *testing.T) {
	b := &cappedBuffer{left: 4}
	for _, s := range []string{"ab", "cde", "f"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want all accepted", s, n, err)
		}
	}
	if got := b.output(); got != "abcd" {
		t.Errorf("kept %q, want the first 4 bytes", got)
	}
}
