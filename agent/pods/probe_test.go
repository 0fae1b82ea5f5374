package pods

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// probeFake answers exec probes with a settable exit code.
type probeFake struct {
	*runtimetest.Fake
	code atomic.Int32
}

func (f *probeFake) Exec(context.Context, string, string, runtime.ExecOptions) (int, error) {
	return int(f.code.Load()), nil
}

func readyIs(want corev1.ConditionStatus) func(corev1.PodStatus) bool {
	return func(st corev1.PodStatus) bool {
		return st.Phase == corev1.PodRunning && condition(st, corev1.PodReady) == want
	}
}

func TestReadinessProbe(t *testing.T) {
	clk := &clock{now: time.Now()}
	fake := &probeFake{Fake: fakeRuntime()}
	fake.code.Store(1)
	pod := newPod("ready", "")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
		FailureThreshold: 2,
	}
	h := start(t, Config{Runtime: fake, Now: clk.Now}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "Running, not ready", readyIs(corev1.ConditionFalse))
	if cs := st.ContainerStatuses[0]; cs.Ready || cs.State.Running == nil {
		t.Errorf("container = %+v, want running and not ready", cs)
	}
	fake.code.Store(0)
	clk.Add(10 * time.Second)
	h.rep.waitStatus(t, pod.UID, wait, "ready after the probe passed", readyIs(corev1.ConditionTrue))
	// One failure is below the threshold of two.
	fake.code.Store(1)
	clk.Add(10 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if st, _ := h.rep.last(pod.UID); condition(st, corev1.PodReady) != corev1.ConditionTrue {
		t.Fatal("not ready after a single failure")
	}
	clk.Add(10 * time.Second)
	h.rep.waitStatus(t, pod.UID, wait, "not ready after two failures", readyIs(corev1.ConditionFalse))
}

func TestHTTPReadinessProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Header.Get("X-Probe") != "yes" {
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	pod := newPod("http", "")
	c := &pod.Spec.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: int32(atoi(t, port))}}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Host: "127.0.0.1", Port: intstr.FromString("web"), Path: "/healthz",
		HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}},
	}}}
	h := start(t, Config{}, pod)
	h.rep.waitStatus(t, pod.UID, wait, "ready", readyIs(corev1.ConditionTrue))
}

func TestLivenessProbeRestarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens: the probe fails
	pod := newPod("live", "")
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
			Host: "127.0.0.1", Port: intstr.FromInt32(int32(addr.Port))}},
		FailureThreshold: 1,
	}
	pod.Spec.TerminationGracePeriodSeconds = ptr(int64(0))
	h := start(t, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, wait, "restarted", func(st corev1.PodStatus) bool {
		return st.ContainerStatuses[0].RestartCount >= 1
	})
	if lt := st.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 137 {
		t.Errorf("lastState = %+v, want killed (137)", st.ContainerStatuses[0].LastTerminationState)
	}
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
