package pods

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime/runtimetest"
)

const testImage = "docker.io/minik/busybox:test"

// recorder is a Reporter that keeps every report.
type recorder struct {
	mu         sync.Mutex
	statuses   map[types.UID][]corev1.PodStatus
	terminated map[types.UID]int
	events     map[types.UID][]Event
}

func newRecorder() *recorder {
	return &recorder{statuses: map[types.UID][]corev1.PodStatus{}, terminated: map[types.UID]int{}, events: map[types.UID][]Event{}}
}

func (r *recorder) PodEvent(_ types.NamespacedName, uid types.UID, ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[uid] = append(r.events[uid], ev)
}

// eventsOf returns uid's events as "FieldPath Type Reason: Message".
func (r *recorder) eventsOf(uid types.UID) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events[uid] {
		out = append(out, ev.FieldPath+" "+ev.Type+" "+ev.Reason+": "+ev.Message)
	}
	return out
}

func (r *recorder) PodStatus(_ types.NamespacedName, uid types.UID, st corev1.PodStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[uid] = append(r.statuses[uid], *st.DeepCopy())
}

func (r *recorder) PodTerminated(_ types.NamespacedName, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.terminated[uid]++
}

func (r *recorder) last(uid types.UID) (corev1.PodStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.statuses[uid]
	if len(s) == 0 {
		return corev1.PodStatus{}, false
	}
	return s[len(s)-1], true
}

func (r *recorder) all(uid types.UID) []corev1.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]corev1.PodStatus(nil), r.statuses[uid]...)
}

func (r *recorder) terminations(uid types.UID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.terminated[uid]
}

// waitStatus waits until the last reported status of uid satisfies cond.
func (r *recorder) waitStatus(t testing.TB, uid types.UID, timeout time.Duration, what string, cond func(corev1.PodStatus) bool) corev1.PodStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, ok := r.last(uid)
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: no status with %s in %v; last: %s", uid, what, timeout, describe(st))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// describe summarizes a status for failure messages.
func describe(st corev1.PodStatus) string {
	s := string(st.Phase)
	for _, cs := range append(st.InitContainerStatuses, st.ContainerStatuses...) {
		s += " " + cs.Name + ":"
		switch {
		case cs.State.Running != nil:
			s += "running"
		case cs.State.Waiting != nil:
			s += "waiting(" + cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message + ")"
		case cs.State.Terminated != nil:
			s += "terminated(" + cs.State.Terminated.Reason + ")"
		}
		s += "#" + string(rune('0'+cs.RestartCount))
	}
	return s
}

// clock is a settable clock for back-off tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type harness struct {
	m      *Manager
	fake   *runtimetest.Fake
	rep    *recorder
	done   chan error
	cancel context.CancelFunc
	once   sync.Once
}

// stop ends Run and waits for it.
func (h *harness) stop(t testing.TB) {
	h.once.Do(func() {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
}

// start runs a Manager on a Fake holding testImage. cfg fields left zero
// get test defaults; Runtime may be preset.
func start(t *testing.T, cfg Config, pods ...*corev1.Pod) *harness {
	t.Helper()
	h := &harness{rep: newRecorder(), done: make(chan error, 1)}
	if cfg.Runtime == nil {
		h.fake = runtimetest.NewFake()
		h.fake.AddImage(testImage)
		cfg.Runtime = h.fake
	} else if f, ok := cfg.Runtime.(*runtimetest.Fake); ok {
		h.fake = f
	}
	cfg.Reporter = h.rep
	if cfg.NodeName == "" {
		cfg.NodeName, cfg.NodeIP = "node1", "192.0.2.10"
	}
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = 10 * time.Millisecond
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	if pods != nil {
		m.SetPods(pods)
	}
	go func() { h.done <- m.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

var podSeq int

// newPod returns a pod with one container per command ("" runs forever).
func newPod(name string, cmds ...string) *corev1.Pod {
	podSeq++
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns", UID: types.UID(name + "-uid-" + string(rune('a'+podSeq%26))),
			Labels: map[string]string{"app": name}, ResourceVersion: "1",
		},
		Spec: corev1.PodSpec{NodeName: "node1", RestartPolicy: corev1.RestartPolicyAlways},
	}
	for i, cmd := range cmds {
		c := corev1.Container{Name: "c" + string(rune('0'+i)), Image: testImage}
		if cmd != "" {
			c.Command = []string{"sh", "-c", cmd}
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	return p
}

func bump(p *corev1.Pod) *corev1.Pod {
	c := p.DeepCopy()
	c.ResourceVersion += "1"
	return c
}

func phaseIs(ph corev1.PodPhase) func(corev1.PodStatus) bool {
	return func(st corev1.PodStatus) bool { return st.Phase == ph }
}

func condition(st corev1.PodStatus, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func fakeRuntime() *runtimetest.Fake {
	f := runtimetest.NewFake()
	f.AddImage(testImage)
	return f
}
