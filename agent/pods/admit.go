package pods

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Admission refusals, as the kubelet words them: its general predicates
// name the failing scheduler plugin and give the plugin's reason, and the
// pod's status message says the pod was rejected.
const (
	ReasonNodePorts      = "NodePorts"
	nodePortsFailure     = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
	rejectedStatusPrefix = "Pod was rejected: "
)

// rejection is why a pod was refused on this node.
type rejection struct {
	reason, message string
}

// hostPort is one port a pod takes on the node.
type hostPort struct {
	protocol corev1.Protocol
	ip       string
	port     int32
}

// hostPortsOf lists the hostPorts of pod's containers and sidecars (init
// containers that keep running), protocol defaulted to TCP.
func hostPortsOf(pod *corev1.Pod) []hostPort {
	var out []hostPort
	add := func(cs []corev1.Container, sidecarsOnly bool) {
		for i := range cs {
			if sidecarsOnly && !isSidecar(&cs[i]) {
				continue
			}
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				proto := cmp.Or(p.Protocol, corev1.ProtocolTCP)
				out = append(out, hostPort{protocol: proto, ip: p.HostIP, port: p.HostPort})
			}
		}
	}
	add(pod.Spec.InitContainers, true)
	add(pod.Spec.Containers, false)
	return out
}

// conflicts tells whether two hostPorts cannot both be bound: the same
// protocol and port on the same address, or on any address when either
// is the wildcard.
func (a hostPort) conflicts(b hostPort) bool {
	if a.protocol != b.protocol || a.port != b.port {
		return false
	}
	wild := func(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
	return wild(a.ip) || wild(b.ip) || a.ip == b.ip
}

// admission decides, as the kubelet's admission does, which new pods may
// run next to the pods already admitted: sysctls the node allows, and
// free hostPorts.
type admission struct {
	used []hostPort
}

// admit takes pod's hostPorts if they are free, or returns why not.
func (a *admission) admit(pod *corev1.Pod) *rejection {
	if name := forbiddenSysctl(pod); name != "" {
		return &rejection{reason: reasonSysctlForbidden, message: fmt.Sprintf("forbidden sysctl: %q not allowlisted", name)}
	}
	ports := hostPortsOf(pod)
	for _, p := range ports {
		for _, u := range a.used {
			if p.conflicts(u) {
				return &rejection{reason: ReasonNodePorts, message: nodePortsFailure}
			}
		}
	}
	a.used = append(a.used, ports...)
	return nil
}

// admitted tells whether pod was admitted by a node before: it started,
// or it already reached a phase past Pending. Such pods keep their place
// when the agent restarts.
func admitted(pod *corev1.Pod) bool {
	return pod.Status.StartTime != nil || pod.Status.Phase != "" && pod.Status.Phase != corev1.PodPending
}

// podActive tells whether an admitted pod still holds what it was given:
// it has not finished.
func podActive(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// admitNew returns the rejections of the new pods of desired (those
// without a worker), checked in order of creation against the active
// pods that have workers and were not rejected, as the kubelet orders its
// admissions.
func (s *supervisor) admitNew(desired map[types.UID]*corev1.Pod) map[types.UID]*rejection {
	var a admission
	var fresh []*corev1.Pod
	for uid, p := range desired {
		switch {
		case s.workers[uid] == nil:
			fresh = append(fresh, p)
		case s.rejected[uid] == nil && podActive(p):
			a.used = append(a.used, hostPortsOf(p)...)
		}
	}
	slices.SortFunc(fresh, func(x, y *corev1.Pod) int {
		if c := x.CreationTimestamp.Compare(y.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(x.Name, y.Name)
	})
	// Pods admitted before, by an earlier run of the agent, are counted
	// first: they hold their ports already.
	for _, p := range fresh {
		if admitted(p) && podActive(p) {
			a.used = append(a.used, hostPortsOf(p)...)
		}
	}
	out := map[types.UID]*rejection{}
	for _, p := range fresh {
		if admitted(p) || p.DeletionTimestamp != nil {
			continue
		}
		if r := a.admit(p); r != nil {
			out[p.UID] = r
		}
	}
	return out
}

// reject reports a pod refused by admission as the kubelet does: phase
// Failed with the refusal's reason and message, and a warning event.
// Nothing of it runs.
func (w *worker) reject() {
	if w.finished {
		return
	}
	w.finished = true
	r := w.rejection
	w.lg.Info("pod rejected", "reason", r.reason, "message", r.message)
	w.event("", corev1.EventTypeWarning, r.reason, "%s", r.message)
	st := corev1.PodStatus{
		Phase:    corev1.PodFailed,
		Reason:   r.reason,
		Message:  rejectedStatusPrefix + r.message,
		QOSClass: w.pod.Status.QOSClass,
	}
	w.reported = st.DeepCopy()
	w.m.cfg.Reporter.PodStatus(types.NamespacedName{Namespace: w.pod.Namespace, Name: w.pod.Name}, w.uid, st)
}
