package pods

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/runtime"
)

func TestHostPortConflicts(t *testing.T) {
	tcp := func(ip string, port int32) hostPort { return hostPort{corev1.ProtocolTCP, ip, port} }
	tests := []struct {
		a, b hostPort
		want bool
	}{
		{tcp("", 80), tcp("", 80), true},
		{tcp("", 80), tcp("", 81), false},
		{tcp("", 80), hostPort{corev1.ProtocolUDP, "", 80}, false},
		{tcp("10.0.0.1", 80), tcp("10.0.0.1", 80), true},
		{tcp("10.0.0.1", 80), tcp("10.0.0.2", 80), false},
		{tcp("0.0.0.0", 80), tcp("10.0.0.2", 80), true},
		{tcp("10.0.0.1", 80), tcp("", 80), true},
	}
	for _, tc := range tests {
		if got := tc.a.conflicts(tc.b); got != tc.want {
			t.Errorf("%+v.conflicts(%+v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// withHostPort gives p's first container a hostPort, created at t0+age.
func withHostPort(p *corev1.Pod, proto corev1.Protocol, ip string, port int32, age time.Duration) *corev1.Pod {
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port, HostPort: port, HostIP: ip, Protocol: proto}}
	p.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(age))
	return p
}

// TestHostPortAdmission checks that a pod whose hostPort another pod of
// the node holds is refused as the kubelet refuses it, and that the port
// is free again once its holder is gone.
func TestHostPortAdmission(t *testing.T) {
	first := withHostPort(newPod("first", ""), corev1.ProtocolTCP, "", 21017, 0)
	second := withHostPort(newPod("second", ""), corev1.ProtocolTCP, "", 21017, time.Second)
	onIP := withHostPort(newPod("on-ip", ""), corev1.ProtocolTCP, "192.0.2.10", 21017, 2*time.Second)
	udp := withHostPort(newPod("udp", ""), corev1.ProtocolUDP, "", 21017, 3*time.Second)
	other := withHostPort(newPod("other", ""), "", "127.0.0.1", 9090, 4*time.Second)
	// Handed over out of order: admission goes by creation time.
	h := start(t, Config{}, onIP, udp, second, other, first)
	for _, p := range []*corev1.Pod{first, udp, other} {
		h.rep.waitStatus(t, p.UID, wait, "Running", phaseIs(corev1.PodRunning))
	}
	for _, p := range []*corev1.Pod{second, onIP} {
		st := h.rep.waitStatus(t, p.UID, wait, "Failed", phaseIs(corev1.PodFailed))
		want := corev1.PodStatus{Phase: corev1.PodFailed, Reason: "NodePorts",
			Message: "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"}
		if st.Phase != want.Phase || st.Reason != want.Reason || st.Message != want.Message {
			t.Errorf("%s status = %s %q %q, want %s %q %q", p.Name, st.Phase, st.Reason, st.Message, want.Phase, want.Reason, want.Message)
		}
		if _, err := h.fake.PodStatus(context.Background(), string(p.UID)); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("%s in the runtime: %v; want nothing started", p.Name, err)
		}
		wantEv := " Warning NodePorts: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
		if evs := h.rep.eventsOf(p.UID); !slices.Contains(evs, wantEv) {
			t.Errorf("%s events = %q, want %q", p.Name, evs, wantEv)
		}
	}

	// The holder goes; a new pod for the same port runs. A rejected pod
	// being deleted is reported gone.
	third := withHostPort(newPod("third", ""), corev1.ProtocolTCP, "", 21017, 5*time.Second)
	deleted := bump(second)
	deleted.DeletionTimestamp = ptr(metav1.Now())
	h.m.SetPods([]*corev1.Pod{deleted, onIP, udp, other, third})
	h.rep.waitStatus(t, third.UID, wait, "Running", phaseIs(corev1.PodRunning))
	deadline := time.Now().Add(wait)
	for h.rep.terminations(second.UID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("deleted rejected pod never reported terminated")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostPortAdmittedBefore checks that a pod admitted by an earlier run
// of the agent keeps its port against an older pod new to the node.
func TestHostPortAdmittedBefore(t *testing.T) {
	running := withHostPort(newPod("running", ""), corev1.ProtocolTCP, "", 8080, time.Minute)
	started := metav1.NewTime(time.Now())
	running.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &started}
	older := withHostPort(newPod("older", ""), corev1.ProtocolTCP, "", 8080, 0)
	h := start(t, Config{}, older, running)
	h.rep.waitStatus(t, older.UID, wait, "Failed", phaseIs(corev1.PodFailed))
	st := h.rep.waitStatus(t, running.UID, wait, "Running", phaseIs(corev1.PodRunning))
	if st.Reason != "" {
		t.Errorf("running pod reason = %q, want none", st.Reason)
	}
	for _, ev := range h.rep.eventsOf(running.UID) {
		if strings.HasPrefix(ev, " Warning NodePorts") {
			t.Errorf("running pod has event %q", ev)
		}
	}
}
